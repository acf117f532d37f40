"""Live updates benchmark: open streams of /events over two instances behind nginx, writers
posting at a steady rate on a third instance.

    .venv/bin/python bench/events.py [--quick] [--streams N] [--rate POSTS_PER_S]
        [--seconds S] [--database-url URL] [--write docs/benchmarks.md]

Seeds a data set (`microblog seed`), logs in readers who follow the writers, holds the streams
(bench/streams.py: each reader has several, as tabs), then measures: the latency from each
post's event row to its arrival on every stream (p50, p99), the events lost or repeated (each
stream must get every post once), the instances' memory per 1,000 streams, their CPU per
delivered event, and the home timeline's requests/s through nginx with the streams open and
idle against without them (wrk, before the streams open and after they close).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import events_report
import httpx
import options
import procstat
import report
import stack
import streams
import wrk
from events_report import Results
from streams import Stream

from microblog.db.transactions import without_duties
from microblog.follows.queries import follow

READERS = 100  # each holds streams / READERS of the streams, as tabs
WRITERS = 4
DRAIN_TIMEOUT = 15.0  # after the last post, for every stream to have every event
SETTLE = 2.0  # after the streams open, before their memory is read


@dataclass(frozen=True)
class Load:
    data: options.Sizes  # the seeded data set: the scale benchmark's
    streams: int
    rate: float  # posts per second, from all writers together
    seconds: float
    wrk_connections: int
    wrk_seconds: int


FULL = Load(options.FULL, streams=1000, rate=5.0, seconds=30.0, wrk_connections=16, wrk_seconds=10)
QUICK = Load(options.QUICK, streams=100, rate=5.0, seconds=5.0, wrk_connections=8, wrk_seconds=2)


def arguments() -> tuple[argparse.Namespace, Load]:
    given = options.parser(__doc__.splitlines()[0])
    given.add_argument("--streams", type=int, help=f"streams to hold ({FULL.streams:,})")
    given.add_argument("--rate", type=float, help=f"posts per second ({FULL.rate:g})")
    given.add_argument("--seconds", type=float, help=f"how long they post ({FULL.seconds:g})")
    args = given.parse_args()
    chosen = {name: v for name in ("streams", "rate", "seconds") if (v := getattr(args, name))}
    return args, replace(QUICK if args.quick else FULL, **chosen)


async def accounts(database_url: str) -> tuple[list[str], list[tuple[int, str]]]:
    """Readers' usernames, and writers' ids and usernames; every reader follows every writer."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, username FROM users ORDER BY id LIMIT $1", READERS + WRITERS
        )
        readers, writers = rows[:READERS], rows[READERS:]
        async with without_duties(conn):
            for reader in readers:
                for writer in writers:
                    await follow(conn, reader["id"], writer["id"])
        return [r["username"] for r in readers], [(w["id"], w["username"]) for w in writers]
    finally:
        await conn.close()


async def post_steadily(base: str, cookies: list[str], rate: float, seconds: float) -> int:
    """Posts at `rate` per second for `seconds`, the writers taking turns; how many."""
    async with httpx.AsyncClient(base_url=base) as client:
        tokens = []
        for cookie in cookies:
            page = (await client.get("/", headers={"Cookie": cookie})).text
            tokens.append(re.search(r'name="csrf_token" value="([^"]+)"', page).group(1))
        began, written = time.monotonic(), 0
        while (due := began + written / rate) < began + seconds:
            await asyncio.sleep(max(due - time.monotonic(), 0))
            turn = written % len(cookies)
            response = await client.post(
                "/posts",
                data={"body": f"live benchmark post {written}", "csrf_token": tokens[turn]},
                headers={"Cookie": cookies[turn]},
            )
            assert response.status_code == 303, response.text
            written += 1
        return written


async def written_events(url: str, after: int, writers: list[int]) -> dict[int, float]:
    """The writers' post events after `after`: id, and when its row was written (epoch s)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, extract(epoch FROM created_at)::float8 FROM events "
            "WHERE id > $1 AND kind = 'post' AND author_id = ANY($2::bigint[])",
            after,
            writers,
        )
        return dict(rows)  # type: ignore[arg-type]
    finally:
        await conn.close()


async def newest_event(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT coalesce(max(id), 0) FROM events")
    finally:
        await conn.close()


async def until_delivered(held: list[Stream], count: int) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    # A poll of every stream's count: one event per stream would cost more than it saves.
    while time.monotonic() < deadline and any(len(s.received) < count for s in held):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def home_rate(front: stack.Server, cookie: str, load: Load) -> wrk.Report:
    url = front.url + "/"
    wrk.warm_up(url, load.wrk_connections, cookie)
    return wrk.run(url, load.wrk_connections, load.wrk_seconds, cookie).report


async def measure(setup: Setup, load: Load) -> Results:
    pids = [server.popen.pid for server in setup.instances]
    await asyncio.to_thread(home_rate, setup.front, setup.home_cookie, load)  # caches filled
    without_before = await asyncio.to_thread(home_rate, setup.front, setup.home_cookie, load)
    rss_before = sum(map(procstat.rss_bytes, pids))
    held = [Stream(setup.reader_cookies[n % READERS]) for n in range(load.streams)]
    tasks = await streams.open_all(held, setup.front.port)
    await asyncio.sleep(SETTLE)
    rss_after = sum(map(procstat.rss_bytes, pids))
    with_streams = await asyncio.to_thread(home_rate, setup.front, setup.home_cookie, load)
    position = await newest_event(setup.database_url)
    cpu_before = sum(map(procstat.cpu_seconds, pids))
    posted = await post_steadily(setup.writer.url, setup.writer_cookies, load.rate, load.seconds)
    await until_delivered(held, posted)
    cpu = sum(map(procstat.cpu_seconds, pids)) - cpu_before
    await streams.close_all(tasks)
    without_after = await asyncio.to_thread(home_rate, setup.front, setup.home_cookie, load)
    events = await written_events(setup.database_url, position, setup.writer_ids)
    return Results(
        load=load,
        posted=posted,
        written=events,
        received=[s.received for s in held],
        failures=[s.failure for s in held if s.failure],
        rss_per_stream=(rss_after - rss_before) / load.streams,
        app_cpu_seconds=cpu,
        without=(without_before, without_after),
        with_streams=with_streams,
        readers=READERS,
        writers=len(setup.writer_ids),
    )


@dataclass(frozen=True)
class Setup:
    database_url: str
    instances: list[stack.Server]
    writer: stack.Server
    front: stack.Server
    reader_cookies: list[str]
    writer_ids: list[int]
    writer_cookies: list[str]
    home_cookie: str


def run(args: argparse.Namespace, load: Load, started: list, scratch: Path) -> Results:
    scratch.chmod(0o755)  # nginx workers (as nobody, under root) walk to static/
    server_url = args.database_url or stack.embedded_database(started, scratch / "pg")
    database_url = stack.prepare(server_url, load.data.users, load.data.posts, load.data.follows)
    readers, writers = asyncio.run(accounts(database_url))
    apps = stack.start_servers(started, "microblog", 3, database_url, scratch / "apps")
    instances, writer = apps[:2], apps[2]
    with stack.nginx(instances, scratch / "site") as front:
        stack.log(f"logging in {len(readers)} readers and {len(writers)} writers ...")
        setup = Setup(
            database_url=database_url,
            instances=instances,
            writer=writer,
            front=front,
            reader_cookies=[stack.log_in(front, name) for name in readers],
            writer_ids=[user_id for user_id, _ in writers],
            writer_cookies=[stack.log_in(writer, name) for _, name in writers],
            home_cookie=stack.session_cookie(front, database_url)[0],
        )
        stack.log(f"{load.streams} streams, {load.rate:g} posts/s for {load.seconds:g} s ...")
        return asyncio.run(measure(setup, load))


def main() -> int:
    began, load_before = time.monotonic(), os.getloadavg()
    args, load = arguments()
    stack.require("wrk", "nginx")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    # Every stream is a socket here, two in nginx and one in an instance; children inherit.
    _, most = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (most, most))
    with tempfile.TemporaryDirectory(prefix="eventsbench-") as tmp, stack.processes() as started:
        results = run(args, load, started, Path(tmp))
    results = replace(
        results,
        load_average=(load_before, os.getloadavg()),
        elapsed=time.monotonic() - began,
        command=report.command_line(sys.argv),
    )
    text = events_report.section(results)
    report.publish(text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
