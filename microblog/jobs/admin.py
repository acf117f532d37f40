"""What operators ask of the queue: its depth, failed jobs, retry, discard (CLI, /admin, metrics).

Acting on every failed job that matches a filter goes BATCH jobs per statement, each batch its
own transaction: a backlog of a hundred thousand failed jobs is never held locked at once, and
workers claim the first retried jobs while the rest are still being put back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from microblog.jobs.queue import CHANNEL, WAKE, FailedJob

BATCH = 500
# What runs inside each batch's transaction with the batch's count: the audit of /admin.
BatchHook = Callable[[asyncpg.Connection, int], Awaitable[None]]


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    state: str  # pending (due), scheduled (due later), running or failed
    count: int
    oldest_due_seconds: float | None  # pending only: how long the oldest due job has waited


# Only the states jobs wait in: finished and discarded jobs are history (counted as they
# happen), and counting them would read the whole retention period on every call. Each state
# read has a partial index of its own.
_DEPTH = """
    SELECT queue,
           CASE WHEN state = 'pending' AND run_at > now() THEN 'scheduled' ELSE state END
               AS state,
           count(*) AS count,
           extract(epoch FROM now() - min(run_at)
                   FILTER (WHERE state = 'pending' AND run_at <= now()))::float8
               AS oldest_due_seconds
    FROM infra.jobs WHERE state IN ('pending', 'running', 'failed')
    GROUP BY 1, 2 ORDER BY 1, 2
"""


async def depth(conn: asyncpg.Connection) -> list[QueueDepth]:
    return [QueueDepth(**dict(row)) for row in await conn.fetch(_DEPTH)]


async def finished_last_hour(conn: asyncpg.Connection) -> int:
    """Jobs that finished in the last hour (the index of finished jobs by time serves it)."""
    return await conn.fetchval(
        """
        SELECT count(*) FILTER (WHERE state = 'finished') FROM infra.jobs
        WHERE state IN ('finished', 'discarded') AND finished_at > now() - interval '1 hour'
        """
    )


async def running_by_process(conn: asyncpg.Connection) -> dict[UUID, int]:
    """How many jobs each process holds running."""
    rows = await conn.fetch(
        "SELECT locked_by, count(*) FROM infra.jobs WHERE state = 'running' GROUP BY 1"
    )
    return {row["locked_by"]: row["count"] for row in rows if row["locked_by"] is not None}


@dataclass(frozen=True)
class Job:
    id: int
    queue: str
    kind: str
    args: dict
    state: str
    attempts: int
    max_attempts: int
    last_error: str | None
    run_at: datetime
    created_at: datetime
    finished_at: datetime | None


async def job(conn: asyncpg.Connection, job_id: int) -> Job | None:
    row = await conn.fetchrow(
        """
        SELECT id, queue, kind, args::text AS args, state, attempts, max_attempts, last_error,
               run_at, created_at, finished_at
        FROM infra.jobs WHERE id = $1
        """,
        job_id,
    )
    return Job(**{**dict(row), "args": json.loads(row["args"])}) if row is not None else None


async def failed(
    conn: asyncpg.Connection, limit: int = 50, *, kind: str | None = None
) -> list[FailedJob]:
    """The newest failed jobs, of one kind or of all."""
    rows = await conn.fetch(
        """
        SELECT id, queue, kind, args::text AS args, attempts, last_error, finished_at
        FROM infra.jobs WHERE state = 'failed' AND ($2::text IS NULL OR kind = $2)
        ORDER BY id DESC LIMIT $1
        """,
        limit,
        kind,
    )
    return [FailedJob(**{**dict(row), "args": json.loads(row["args"])}) for row in rows]


async def failed_kinds(conn: asyncpg.Connection) -> dict[str, int]:
    """How many failed jobs each kind has, for filtering by kind."""
    rows = await conn.fetch(
        "SELECT kind, count(*) FROM infra.jobs WHERE state = 'failed' GROUP BY 1 ORDER BY 1"
    )
    return {row["kind"]: row["count"] for row in rows}


# A failed job whose unique key is taken by a waiting job stays failed; of several failed
# jobs sharing a key, the oldest goes back, as the index allows one waiting job per key.
_RETRY = f"""
    WITH candidates AS (
        SELECT id, unique_key FROM infra.jobs
        WHERE state = 'failed' AND ($1::bigint IS NULL OR id = $1)
          AND ($2::text IS NULL OR kind = $2) AND id > $3
        ORDER BY id LIMIT $4
        FOR UPDATE SKIP LOCKED
    ), chosen AS (
        SELECT DISTINCT ON (coalesce(c.unique_key, c.id::text)) c.id FROM candidates c
        WHERE c.unique_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM infra.jobs o
            WHERE o.unique_key = c.unique_key AND o.state IN ('pending', 'running'))
        ORDER BY coalesce(c.unique_key, c.id::text), c.id
    ), retried AS (
        UPDATE infra.jobs j SET state = 'pending', attempts = 0, run_at = now(),
            finished_at = NULL, locked_by = NULL
        WHERE j.id IN (SELECT id FROM chosen)
        RETURNING j.id, j.queue
    ), wake AS (
        SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM retried) AS q
    )
    SELECT (SELECT max(id) FROM candidates) AS last_id,
           (SELECT array_agg(id ORDER BY id) FROM retried) AS retried, {WAKE}
"""


async def retry(conn: asyncpg.Connection, job_id: int) -> bool:
    """Put one failed job back in the queue with fresh attempts."""
    row = await conn.fetchrow(_RETRY, job_id, None, 0, 1)
    return bool(row["retried"])


async def retry_matching(
    conn: asyncpg.Connection, kind: str | None = None, *, each_batch: BatchHook | None = None
) -> int:
    """Put every failed job (of `kind`, or of any) back in the queue; how many went back."""

    async def batch(after: int) -> tuple[int | None, int]:
        row = await conn.fetchrow(_RETRY, None, kind, after, BATCH)
        return row["last_id"], len(row["retried"] or ())

    return await _in_batches(conn, batch, each_batch)


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


async def discard_matching(
    conn: asyncpg.Connection, kind: str | None = None, *, each_batch: BatchHook | None = None
) -> int:
    """Give up on every failed job (of `kind`, or of any); how many were discarded."""

    async def batch(after: int) -> tuple[int | None, int]:
        row = await conn.fetchrow(
            """
            WITH candidates AS (
                SELECT id FROM infra.jobs
                WHERE state = 'failed' AND ($1::text IS NULL OR kind = $1) AND id > $2
                ORDER BY id LIMIT $3
                FOR UPDATE SKIP LOCKED
            ), discarded AS (
                UPDATE infra.jobs SET state = 'discarded', finished_at = now()
                WHERE id IN (SELECT id FROM candidates) RETURNING 1
            )
            SELECT (SELECT max(id) FROM candidates) AS last_id,
                   (SELECT count(*) FROM discarded) AS discarded
            """,
            kind,
            after,
            BATCH,
        )
        return row["last_id"], row["discarded"]

    return await _in_batches(conn, batch, each_batch)


async def _in_batches(
    conn: asyncpg.Connection,
    batch: Callable[[int], Awaitable[tuple[int | None, int]]],
    each_batch: BatchHook | None,
) -> int:
    """Run `batch` (after the last id it saw) until it sees no more jobs, each in a
    transaction of its own with `each_batch`."""
    total, after = 0, 0
    while True:
        async with conn.transaction():
            last_id, done = await batch(after)
            if each_batch is not None and done:
                await each_batch(conn, done)
        total += done
        if last_id is None:
            return total
        after = last_id
