"""What operators ask of the queue: counts, failed jobs, retry, discard (CLI and /admin)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from microblog.jobs.queue import CHANNEL, FailedJob


@dataclass(frozen=True)
class QueueStats:
    queue: str
    state: str
    count: int
    oldest_due: datetime | None  # pending jobs only: the longest a due job has waited


async def stats(conn: asyncpg.Connection) -> list[QueueStats]:
    rows = await conn.fetch(
        """
        SELECT queue, state, count(*) AS count,
               min(run_at) FILTER (WHERE state = 'pending' AND run_at <= now()) AS oldest_due
        FROM infra.jobs GROUP BY queue, state ORDER BY queue, state
        """
    )
    return [QueueStats(**dict(row)) for row in rows]


async def failed(conn: asyncpg.Connection, limit: int = 50) -> list[FailedJob]:
    rows = await conn.fetch(
        """
        SELECT id, queue, kind, args::text AS args, attempts, last_error, finished_at
        FROM infra.jobs WHERE state = 'failed' ORDER BY id DESC LIMIT $1
        """,
        limit,
    )
    return [FailedJob(**{**dict(row), "args": json.loads(row["args"])}) for row in rows]


async def retry(conn: asyncpg.Connection, job_id: int | None) -> list[int]:
    """Put failed jobs (one, or all with None) back in the queue with fresh attempts.

    A failed job whose unique key is already taken by a waiting job stays failed.
    """
    rows = await conn.fetch(
        f"""
        WITH retried AS (
            UPDATE infra.jobs j SET state = 'pending', attempts = 0, run_at = now(),
                finished_at = NULL, locked_by = NULL
            WHERE j.state = 'failed' AND ($1::bigint IS NULL OR j.id = $1)
              AND (j.unique_key IS NULL OR NOT EXISTS (
                    SELECT 1 FROM infra.jobs o
                    WHERE o.unique_key = j.unique_key AND o.state IN ('pending', 'running')))
            RETURNING j.id, j.queue
        ), wake AS (
            SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM retried) AS q
        )
        SELECT id FROM retried, (SELECT count(*) FROM wake) AS woke ORDER BY id
        """,
        job_id,
    )
    return [row["id"] for row in rows]


async def discard(conn: asyncpg.Connection, job_id: int) -> bool:
    """Give up on a failed job, or cancel a pending one. Running jobs cannot be discarded."""
    discarded = await conn.fetchval(
        """
        UPDATE infra.jobs SET state = 'discarded', finished_at = now()
        WHERE id = $1 AND state IN ('failed', 'pending') RETURNING true
        """,
        job_id,
    )
    return bool(discarded)
