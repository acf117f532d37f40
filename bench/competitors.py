"""Worker processes for the job-queue benchmark (bench/jobs.py starts them with sys.executable).

    competitors.py pgqueuer [--batch-size N] [--uvloop]
    competitors.py procrastinate
    competitors.py floor

Each reads its database from BENCH_WORKER_DATABASE_URL and runs until SIGTERM. Every worker
runs a no-op job; every setting not named on the command line is the library's default.
pgqueuer and the floor print "ready" on stdout once they listen; procrastinate is seen ready
in its tables (bench/systems.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

URL_VARIABLE = "BENCH_WORKER_DATABASE_URL"
PGQUEUER_ENTRYPOINT = "noop"
PROCRASTINATE_TASK = "noop"
FLOOR_BATCH = 100

# The floor: what one connection doing nothing but claim-and-finish statements reaches on
# microblog's own table, with no job code and no bookkeeping in between. Each statement marks
# the previous batch finished and claims the next, as microblog's worker does.
FLOOR_SQL = """
    WITH finished AS (
        UPDATE infra.jobs SET state = 'finished', finished_at = now(), locked_by = NULL
        WHERE id = ANY($1::bigint[])
    ), next AS (
        SELECT id FROM infra.jobs
        WHERE state = 'pending' AND run_at <= now()
        ORDER BY priority DESC, run_at, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    UPDATE infra.jobs j
    SET state = 'running', locked_by = $2, attempts = j.attempts + 1, started_at = now()
    FROM next WHERE j.id = next.id
    RETURNING j.id
"""


def procrastinate_app(url: str) -> tuple[Any, Any]:
    """The procrastinate app and its no-op task, shared by the enqueuer and the worker."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name=PROCRASTINATE_TASK)
    async def noop() -> None:
        return None

    return app, noop


def _ready() -> None:
    print("ready", flush=True)


def run_pgqueuer(url: str, batch_size: int | None, use_uvloop: bool) -> None:
    import pgqueuer
    from pgqueuer import PgQueuer
    from pgqueuer.models import Job

    @asynccontextmanager
    async def factory() -> AsyncIterator[PgQueuer]:
        conn = await asyncpg.connect(url)
        pgq = PgQueuer.from_asyncpg_connection(conn)

        @pgq.entrypoint(PGQUEUER_ENTRYPOINT)
        async def noop(job: Job) -> None:
            return None

        async def announce() -> None:
            # The health check round-trips a NOTIFY: it succeeds once the worker listens.
            while True:
                try:
                    await pgq.qm.listener_healthy()
                except Exception:  # not listening yet
                    await asyncio.sleep(0.05)
                else:
                    _ready()
                    return

        announcing = asyncio.create_task(announce())
        try:
            yield pgq
        finally:
            announcing.cancel()
            await conn.close()

    options = {} if batch_size is None else {"batch_size": batch_size}
    _run(pgqueuer.run(factory, **options), use_uvloop)


def run_procrastinate(url: str) -> None:
    app, _ = procrastinate_app(url)

    async def work() -> None:
        async with app.open_async():
            await app.run_worker_async()

    asyncio.run(work())


async def _floor(url: str) -> None:
    # Always index scans, whatever the statistics say (a generic plan made while the table
    # was empty would scan it whole): the floor is what the claim costs with the best plan,
    # not whichever plan the planner happens to pick.
    best_plan = {
        "enable_bitmapscan": "off",
        "enable_sort": "off",
        "plan_cache_mode": "force_custom_plan",
    }
    conn = await asyncpg.connect(url, server_settings=best_plan)
    worker_id = uuid.uuid4()
    _ready()
    finished: list[int] = []
    while True:
        rows = await conn.fetch(FLOOR_SQL, finished, worker_id, FLOOR_BATCH)
        finished = [row[0] for row in rows]
        if not rows:
            await asyncio.sleep(0.002)  # idle: poll, which costs at most 2 ms once work arrives


def _run(main: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=("pgqueuer", "procrastinate", "floor"))
    parser.add_argument("--batch-size", type=int, default=None, help="pgqueuer's batch_size")
    parser.add_argument("--uvloop", action="store_true", help="run pgqueuer on uvloop")
    args = parser.parse_args()
    url = os.environ[URL_VARIABLE]
    if args.system == "pgqueuer":
        run_pgqueuer(url, args.batch_size, args.uvloop)
    elif args.system == "procrastinate":
        run_procrastinate(url)
    else:
        try:
            asyncio.run(_floor(url))
        except KeyboardInterrupt:
            sys.exit(0)


if __name__ == "__main__":
    main()
