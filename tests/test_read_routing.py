"""Reads through a real streaming replica: where they go, and what visitors see meanwhile.

Each instance here is a whole app on pools of its own, with its own replica monitor running, in
front of the tests' PostgreSQL and its streaming replica. The replica's replay is paused with
pg_wal_replay_pause() and the replica killed with SIGKILL; what a page shows says which server
answered it (a paused replica does not have the newest posts), and the instance's counters say
why it was sent there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
from quart import Quart

from microblog.app import create_app
from microblog.config import Settings
from microblog.db.pools import Pools, open_pools
from microblog.db.reading import Reading
from microblog.db.replica_status import Reason, ReplicaStatus
from microblog.runtime import listening
from microblog.users.known import KnownUsers
from tests.conftest import HTMX, Browser, make_post, make_user, post_ids, wait_until
from tests.servers import ReplicaServer, free_port

MAX_LAG = 1.0
# Writes and reads of the read-your-writes test, while replay is paused and while it runs.
TRIES = 200


@dataclass
class Instance:
    app: Quart
    pools: Pools

    @property
    def replica(self) -> ReplicaStatus:
        (only,) = self.pools.replicas.statuses
        return only

    def reads(self, reason: Reason) -> int:
        """Reads sent for `reason`: to the replica when it is REPLICA, else to the primary."""
        target = self.replica.name if reason is Reason.REPLICA else "primary"
        return self.pools.replicas.reads[target, reason]

    async def in_use(self) -> bool:
        status = self.replica
        return status.up and (status.lag_seconds or 0.0) <= self.pools.replicas.max_lag


@asynccontextmanager
async def instance(settings: Settings, name: str) -> AsyncIterator[Instance]:
    """An app as `web` runs it: its own pools, user listener and replica monitor."""
    async with open_pools(settings, application_name=f"microblog web {name}") as pools:
        known = KnownUsers()
        app = create_app(settings, pools, instance_name=name, known_users=known)
        async with (
            app.test_app(),
            listening(pools, known_users=known),
            pools.replicas.monitoring(),
        ):
            running = Instance(app, pools)
            await wait_until(running.in_use)
            yield running


@pytest.fixture
def with_replica(settings, replica: ReplicaServer, database_url) -> Settings:
    return dataclasses.replace(
        settings, replica_database_urls=(replica.url(database_url),), replica_max_lag=MAX_LAG
    )


async def signed_in(app: Quart, user) -> Browser:
    browser = Browser(app.test_client())
    await browser.sign_in(user)
    return browser


async def shown_on(browser: Browser, path: str) -> list[int]:
    return post_ids(await browser.text(path))


async def test_a_writer_sees_their_post_through_another_instance_at_once(with_replica, replica, db):
    # A lag limit the test never reaches: the paused replica stays in use for everyone else.
    settings = dataclasses.replace(with_replica, replica_max_lag=600.0)
    writer, reader = await make_user(db, "writer"), await make_user(db, "reader")
    async with instance(settings, "a") as a, instance(settings, "b") as b:
        on_a = await signed_in(a.app, writer)
        on_b = b.app.test_client()
        on_b.cookie_jar = on_a.client.cookie_jar  # one browser, whichever instance answers
        token = await on_a.csrf_token()
        others_on_b = await signed_in(b.app, reader)

        async def write_then_read(body: str) -> None:
            posted = await on_a.client.post(
                "/posts", form={"body": body, "csrf_token": token}, headers=HTMX
            )
            (post_id,) = post_ids(await posted.get_data(as_text=True))
            home, page = await asyncio.gather(on_b.get("/"), on_b.get(f"/posts/{post_id}"))
            assert post_id in post_ids(await home.get_data(as_text=True)), body
            assert page.status_code == 200, body
            assert body in await page.get_data(as_text=True)

        await replica.pause_replay()
        for n in range(TRIES):
            await write_then_read(f"paused {n}")
        # Meanwhile the replica served everyone else, and has none of these posts.
        served = b.reads(Reason.REPLICA)
        assert not set(await shown_on(others_on_b, "/public")) & set(
            await shown_on(on_a, f"/@{writer.username}")
        )
        assert b.reads(Reason.REPLICA) == served + 1
        assert b.reads(Reason.READ_YOUR_WRITES) >= 2 * TRIES

        await replica.resume_replay()
        for n in range(TRIES):
            await write_then_read(f"replaying {n}")

        # Once the replica has replayed the writer's last post, it serves the writer too.
        await replica.wait_replayed()
        await wait_until(lambda: _replayed_past_primary_position(b, replica))
        served = b.reads(Reason.REPLICA)
        home = await on_b.get("/")
        assert post_ids(await home.get_data(as_text=True))[0] == max(
            await shown_on(on_a, f"/@{writer.username}")
        )
        assert b.reads(Reason.REPLICA) == served + 1


async def _replayed_past_primary_position(instance: Instance, replica: ReplicaServer) -> bool:
    return (instance.replica.replay_lsn or 0) >= await replica.primary_position()


async def test_with_replay_paused_readers_keep_the_replica_until_the_lag_limit(
    with_replica, replica, db, caplog
):
    author, reader = await make_user(db, "author"), await make_user(db, "reader")
    async with instance(with_replica, "a") as a:
        browser = await signed_in(a.app, reader)
        await replica.pause_replay()
        paused = time.monotonic()
        post_id = await make_post(db, author, "written while replay is paused")
        written = time.monotonic()
        assert post_id not in await shown_on(browser, "/public"), "not read from the replica"
        assert a.reads(Reason.REPLICA) >= 1

        async def shown() -> bool:
            return post_id in await shown_on(browser, "/public")

        with caplog.at_level(logging.INFO, logger="microblog.db.replicas"):
            await wait_until(shown)
            assert time.monotonic() - paused >= MAX_LAG
            assert time.monotonic() - written < MAX_LAG + 3
            assert a.replica.lag_seconds > MAX_LAG
            assert a.reads(Reason.LAGGING) >= 1
            assert "replica lagging; reads go elsewhere" in caplog.text

            await replica.resume_replay()
            served = a.reads(Reason.REPLICA)

            async def back() -> bool:
                return await shown() and a.reads(Reason.REPLICA) > served

            await wait_until(back)
            assert "replica caught up" in caplog.text


async def test_a_replica_killed_under_a_read_hands_it_to_the_primary_then_rejoins(
    with_replica, replica, db
):
    author = await make_user(db, "author")
    post_id = await make_post(db, author, "on both servers")
    await replica.wait_replayed()
    async with open_pools(with_replica, application_name="microblog web killed") as pools:
        app = create_app(with_replica, pools, instance_name="killed")
        async with app.test_app():
            running, browser = Instance(app, pools), await signed_in(app, author)
            await pools.replicas.probe()  # by hand: the kill lands between two probes
            assert await shown_on(browser, "/public") == [post_id]
            assert running.reads(Reason.REPLICA) == 1

            await replica.kill()
            assert await shown_on(browser, "/public") == [post_id], "the primary served it"
            assert pools.replicas.failovers[running.replica.name] == 1
            assert not running.replica.up
            assert running.reads(Reason.DOWN) == 0
            assert await shown_on(browser, "/public") == [post_id]
            assert running.reads(Reason.DOWN) == 1, "marked down: the next read skips it"

            await asyncio.to_thread(replica.start)
            await pools.replicas.probe()
            assert await shown_on(browser, "/public") == [post_id]
            assert running.reads(Reason.REPLICA) == 3  # the one the killed replica failed too


async def test_a_bug_in_a_read_is_raised_not_taken_for_a_replica_fault(with_replica):
    async with open_pools(with_replica, application_name="microblog bugs") as pools:
        await pools.replicas.probe()
        with pytest.raises(asyncpg.UndefinedTableError):
            async with Reading(pools.primary, pools.replicas, None, wait=5) as conn:
                await conn.fetch("SELECT * FROM no_such_table")
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            async with Reading(pools.primary, pools.replicas, None, wait=5) as conn:
                await conn.fetchval("INSERT INTO posts (author_id, body) VALUES (1, 'x')")
        with pytest.raises(asyncpg.DataError):
            async with Reading(pools.primary, pools.replicas, None, wait=5) as conn:
                await conn.fetchval("SELECT $1::int", "not a number")
        (status,) = pools.replicas.statuses
        assert status.up
        assert not pools.replicas.failovers
        assert pools.replicas.reads[status.name, Reason.REPLICA] == 3


async def test_up_says_which_replicas_are_in_use_and_never_a_password(
    settings, replica, database_url
):
    port = free_port()
    nowhere = f"postgresql://microblog:secret@127.0.0.1:{port}/app"
    watching = dataclasses.replace(
        settings, replica_database_urls=(replica.url(database_url), nowhere)
    )
    async with open_pools(watching, application_name="microblog up") as pools:
        app = create_app(watching, pools, instance_name="up-test")
        async with app.test_app():
            await pools.replicas.probe()
            response = await app.test_client().get("/up")
    body = await response.get_data(as_text=True)
    assert response.status_code == 200
    lines = body.splitlines()
    assert lines[0] == "ok up-test"
    assert lines[1].startswith(f"replica {replica.folder}:5432/")
    assert ": in use, " in lines[1]
    assert lines[2].startswith(f"replica 127.0.0.1:{port}/app: not in use, down (")
    assert "secret" not in body
