"""The queue's own jobs: upkeep of the queue, and a no-op for checks and benchmarks."""

from __future__ import annotations

import asyncio
import logging

from microblog.jobs import processes, upkeep
from microblog.jobs.registry import JobContext, job

log = logging.getLogger(__name__)


@job("jobs.ping", max_attempts=5)
async def ping(ctx: JobContext, *, sleep_ms: int = 0) -> None:
    """Does nothing (or sleeps): proves the queue end to end, and measures it."""
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)


@job("jobs.prune_finished", max_attempts=3, concurrency=1)
async def prune_finished(ctx: JobContext, *, older_than: float) -> None:
    async with ctx.pools.queue.acquire() as conn:
        deleted = await upkeep.prune_finished(conn, older_than)
    if deleted:
        log.info("pruned finished jobs", extra={"jobs": deleted})


@job("jobs.prune_dead_processes", max_attempts=3)
async def prune_dead_processes(ctx: JobContext, *, silent_for: float) -> None:
    """Forget processes that stopped heartbeating and put their jobs back in the queue."""
    async with ctx.pools.queue.acquire() as conn, conn.transaction():
        await processes.prune_dead(conn, silent_for)
        released = await upkeep.release_orphans(conn)
    if released:
        log.warning("released jobs of dead processes", extra={"jobs": released})
