"""The recurring job that deletes rate-limit rows that no longer limit anything."""

from __future__ import annotations

from microblog.jobs.registry import JobContext, job
from microblog.ratelimit.store import prune


@job("ratelimit.prune", max_attempts=3, concurrency=1)
async def prune_rate_limits(ctx: JobContext) -> None:
    async with ctx.pools.cache.acquire() as conn:
        await prune(conn)
