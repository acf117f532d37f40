"""The data tier under real instances: through PgBouncer in transaction mode, and beside a
streaming replica that is killed under load."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    Launcher,
    Visitor,
    fetch_rows,
    sign_up,
    wait_for,
)
from tests.e2e.test_scale import _sign_up_clients, start_nginx
from tests.servers import PgBouncer, ReplicaServer, database_of

pytestmark = pytest.mark.process

LOGIN_USER_LIMIT = 5
READERS = 12
READS_BEFORE_THE_KILL = 150
READS_WHILE_DOWN = 300


def test_the_walk_through_pgbouncer_in_transaction_mode_over_three_instances(
    fresh_database: str, pgbouncer: PgBouncer, launcher: Launcher, pyz, workdir: Path
):
    """Sign up, follow, post, like, the worker's notifications, the cache and the rate limits,
    each step on another instance, every pooled connection through PgBouncer."""
    env = pyz.env(
        DATABASE_URL=pgbouncer.url(fresh_database),
        DATABASE_DIRECT_URL=fresh_database,
        RATE_LIMITS=f"login_user={LOGIN_USER_LIMIT}/1m",
    )
    migrated = launcher.run(["migrate"], cwd=workdir, env=env)
    assert migrated.returncode == 0, migrated.stderr
    webs = [launcher.web(cwd=workdir, env=env, wait=False) for _ in range(3)]
    launcher.start(["worker"], cwd=workdir, env=env)
    for web in webs:
        web.wait_ready()
    urls = [web.url for web in webs]

    with Visitor(httpx.Client(base_url=urls[0])) as alice:
        sign_up(alice, "alice")
        with Visitor(httpx.Client(base_url=urls[1])) as bob:
            sign_up(bob, "bob")
            bob.http.base_url = urls[2]
            assert bob.submit("/@alice", "/@alice/follow").status_code == 303
            assert alice.submit("/", "/posts", body="through the pooler #walk").status_code == 303
            bob.http.base_url = urls[1]
            assert "through the pooler" in bob.page("/")
            assert "through the pooler" in bob.page("/tags/walk")
            assert "through the pooler" in _anonymous(urls[2], "/public")  # cached there now
            post_id = re.search(r'id="post-(\d+)"', bob.page("/")).group(1)
            bob.http.base_url = urls[0]
            assert bob.submit("/", f"/posts/{post_id}/like").status_code == 303
        assert 'aria-label="1 like"' in _anonymous(urls[2], "/public"), "the cache kept it"

        alice.http.base_url = urls[1]
        wait_for(
            lambda: {"bob followed you", "bob liked your post"} <= _notifications(alice),
            "the worker's notifications",
            within=15,
        )

    codes = []
    for attempt in range(LOGIN_USER_LIMIT + 1):
        with Visitor(httpx.Client(base_url=urls[attempt % 3])) as guesser:
            response = guesser.submit("/login", "/login", username="alice", password="wrong!!!")
            codes.append(response.status_code)
    assert codes == [422] * LOGIN_USER_LIMIT + [429], "one limit across the instances"


def _anonymous(url: str, path: str) -> str:
    response = httpx.get(url + path)
    assert response.status_code == 200
    return response.text


def _notifications(visitor: Visitor) -> set[str]:
    page = visitor.page("/notifications")
    items = re.findall(r'<bdi class="name">([^<]+)</bdi></a>\s*([a-z ]+?)\s*<time', page)
    return {f"{actor} {verb}" for actor, verb in items}


# --- a replica killed under load ---------------------------------------------------------

# The instances' own connections to the replica (not their monitors'), opened since a moment,
# whose last statement read posts: the replica's own view of who reads from it.
READS_ON_THE_REPLICA = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = $1 AND application_name LIKE 'microblog web %'
      AND application_name NOT LIKE '% replica monitor' AND query LIKE '%p.author_id%'
      AND backend_start > to_timestamp($2)
"""


async def _replica_reads_since(replica: ReplicaServer, database: str, since: float) -> int:
    url = replica.address.url("postgres")
    return (await fetch_rows(url, READS_ON_THE_REPLICA, database, since))[0][0]


class ReadLoad:
    """Every client reads / and /public in turn, in the background, until stopped."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.reads, self.failed = 0, []
        self._stop, self._answered = asyncio.Event(), asyncio.Condition()
        self._loops = [asyncio.create_task(self._loop(client)) for client in clients]

    async def _loop(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            for path in ("/", "/public"):
                try:
                    response = await client.get(path)
                    if response.status_code != 200:
                        self.failed.append(f"GET {path}: {response.status_code}")
                except httpx.HTTPError as error:
                    self.failed.append(f"GET {path}: {type(error).__name__}: {error}")
                self.reads += 1
                async with self._answered:
                    self._answered.notify_all()

    async def more(self, count: int) -> None:
        """Until `count` more reads are answered."""
        target = self.reads + count
        async with self._answered:
            await self._answered.wait_for(lambda: self.reads >= target)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._loops)


def test_killing_the_replica_under_read_load_fails_no_read_and_it_is_used_again(
    fresh_database: str, replica: ReplicaServer, launcher: Launcher, pyz, workdir: Path
):
    database = database_of(fresh_database)
    env = pyz.env(
        DATABASE_URL=fresh_database,
        REPLICA_DATABASE_URL=replica.url(fresh_database),
        RATE_LIMITS="off",
    )
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    webs = [launcher.web(cwd=workdir, env=env, wait=False) for _ in range(3)]
    for web in webs:
        web.wait_ready()
    site = workdir / "site"
    site.mkdir()
    nginx = start_nginx(site, [web.port for web in webs])

    async def load() -> tuple[float, list[str]]:
        clients = await _sign_up_clients(nginx.url, READERS)
        reading = ReadLoad(clients)
        try:
            await reading.more(READS_BEFORE_THE_KILL)
            assert await _replica_reads_since(replica, database, 0), "not read from at first"
            await replica.kill()  # with reads in flight
            await reading.more(READS_WHILE_DOWN)
            await asyncio.to_thread(replica.start)
            restarted = time.time()
            while not await _replica_reads_since(replica, database, restarted):
                assert time.time() - restarted < 15, "the replica is not read from again"
                await reading.more(READERS)
            return time.time() - restarted, reading.failed
        finally:
            await reading.stop()
            for client in clients:
                await client.aclose()

    try:
        back_within, failed = asyncio.run(load())
    finally:
        nginx.stop()
    print(f"\nthe replica was read from again {back_within:.1f} s after its restart")
    assert failed == []
    for web in webs:
        # Not even nginx had to try another instance: every instance answered every read.
        assert re.findall(r"microblog.access request .* status=5\d\d", web.stderr) == []
        assert "replica down" in web.stderr
        assert "replica up" in web.stderr
