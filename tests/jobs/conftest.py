"""Helpers for queue tests: recording job kinds, in-process workers, and waiting on the database.

The workers here are the real Worker, listener and heartbeat, on real connections to a real
PostgreSQL; only their number and their job kinds are chosen by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from microblog.background import JOB_KINDS
from microblog.cache.store import Cache
from microblog.config import Settings
from microblog.db.pools import Pools
from microblog.duties import transactions_with_duties
from microblog.jobs import processes
from microblog.jobs.registry import JobContext, JobRegistry, job
from microblog.jobs.worker import Worker, WorkerOptions
from tests.conftest import wait_until


@job("test.record", max_attempts=3, retry_base=0.05)
async def record(ctx: JobContext, *, key: str, fail_times: int = 0, sleep: float = 0.0) -> None:
    """Write one row per execution; sleep; fail the first `fail_times` attempts."""
    async with ctx.pools.primary.acquire() as conn:
        await conn.execute(
            "INSERT INTO test_runs (key, attempt, started) VALUES ($1, $2, clock_timestamp())",
            key,
            ctx.attempt,
        )
    if sleep:
        await asyncio.sleep(sleep)
    async with ctx.pools.primary.acquire() as conn:
        await conn.execute(
            "UPDATE test_runs SET ended = clock_timestamp() WHERE key = $1 AND attempt = $2",
            key,
            ctx.attempt,
        )
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"planned failure {ctx.attempt} of {key}")


@job("test.exclusive", concurrency=1)
async def exclusive(ctx: JobContext, *, key: str, sleep: float) -> None:
    await record.function(ctx, key=key, sleep=sleep)


REGISTRY = JobRegistry([record, exclusive])


@pytest.fixture
async def runs(db):
    await db.execute(
        """
        CREATE TABLE test_runs (
            key text NOT NULL, attempt int NOT NULL,
            started timestamptz NOT NULL, ended timestamptz
        )
        """
    )
    return db


@asynccontextmanager
async def running_worker(
    pools: Pools,
    *,
    registry: JobRegistry = REGISTRY,
    listen_for_jobs: bool = True,
    **options,
) -> AsyncIterator[asyncio.Event]:
    """A registered worker (with its listener) running until the block ends; yields its stop."""
    stop = asyncio.Event()
    async with processes.registered(
        pools.queue, role="worker", name="test-worker", interval=60
    ) as process_id:
        transactions = transactions_with_duties(Settings(), pools, Cache(pools.cache))
        worker = Worker(
            pools, registry, process_id, WorkerOptions(**options), transactions=transactions
        )
        tasks = [asyncio.create_task(worker.run(stop))]
        if listen_for_jobs:
            tasks.append(asyncio.create_task(worker.listen(pools.queue_url, stop)))
        try:
            yield stop
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def job_states(db) -> dict[str, int]:
    rows = await db.fetch("SELECT state, count(*) FROM infra.jobs GROUP BY state")
    return {row["state"]: row["count"] for row in rows}


async def run_app_jobs(pools: Pools) -> None:
    """Run every pending job of the app's own kinds to success, with a real worker."""

    async def done() -> bool:
        return not await pools.queue.fetchval(
            "SELECT count(*) FROM infra.jobs WHERE state IN ('pending', 'running')"
        )

    async with running_worker(pools, registry=JOB_KINDS, poll_interval=0.05):
        await wait_until(done)
    assert not await pools.queue.fetchval("SELECT count(*) FROM infra.jobs WHERE state = 'failed'")
