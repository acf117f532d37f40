"""The recurring job that keeps the events table to EVENT_RETENTION."""

from __future__ import annotations

import logging

from microblog.jobs.registry import JobContext, job
from microblog.live.queries import trim

log = logging.getLogger(__name__)


@job("live.trim_events", max_attempts=3, concurrency=1)
async def trim_events(ctx: JobContext, *, older_than: float) -> None:
    async with ctx.pools.primary.acquire() as conn:
        removed = await trim(conn, older_than)
    if removed:
        log.info("live events trimmed", extra={"events": removed})
