"""The recurring job that keeps the cache within CACHE_MAX_ENTRIES and CACHE_MAX_BYTES."""

from __future__ import annotations

import logging

from microblog.cache.upkeep import trim
from microblog.jobs.registry import JobContext, job

log = logging.getLogger(__name__)


@job("cache.trim", max_attempts=3, concurrency=1)
async def trim_cache(ctx: JobContext, *, max_entries: int, max_bytes: int) -> None:
    async with ctx.pools.cache.acquire() as conn:
        removed = await trim(conn, max_entries, max_bytes)
    if removed:
        log.info("cache trimmed", extra={"entries": removed})
