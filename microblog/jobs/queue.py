"""SQL for the job queue (infra.jobs). Every function takes the connection first: enqueue runs
in the caller's transaction, so a job exists exactly when the write it follows from commits.
With the queue in another database (QUEUE_DATABASE_URL) that transaction cannot hold the job,
and enqueue hands it to the transaction's after-commit work instead (db/transactions.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire
from microblog.db.transactions import ACQUIRE_TIMEOUT, after_commit, queue_elsewhere
from microblog.jobs.registry import JobKind

CHANNEL = "microblog_jobs"
log = logging.getLogger(__name__)

# A SELECT in WITH runs only as far as the main query reads it, so a statement whose `wake` CTE
# notifies workers joins its count: the notifications are sent, whatever the main query returns.
WAKE = "(SELECT count(*) FROM wake) AS woke"


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    queue: str
    kind: str
    args: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class FailedJob:
    id: int
    queue: str
    kind: str
    args: dict[str, Any]
    attempts: int
    last_error: str | None
    finished_at: datetime | None


_ENQUEUE = f"""
    WITH job AS (
        INSERT INTO infra.jobs (queue, kind, args, priority, run_at, max_attempts, unique_key)
        VALUES ($1, $2, $3::jsonb, $4, coalesce($5, now()), $6, $7)
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'running')
        DO NOTHING
        RETURNING id, queue, run_at
    )
    SELECT id, CASE WHEN run_at <= now() THEN pg_notify('{CHANNEL}', queue)::text END AS woke
    FROM job
"""


async def enqueue(
    conn: asyncpg.Connection,
    kind: JobKind,
    args: dict[str, Any],
    *,
    queue: str | None = None,
    priority: int = 0,
    run_at: datetime | None = None,
    unique_key: str | None = None,
) -> int | None:
    """The new job's id; None when a job with this unique_key is already pending or running,
    and when the queue is in another database than the transaction on `conn` (the job is
    enqueued there once the transaction commits).

    Raises JobArgumentsError at once for arguments the job would not accept.
    """
    values = (queue or kind.queue, kind.name, kind.encode(args), priority, run_at,
              kind.max_attempts, unique_key)  # fmt: skip
    if (elsewhere := queue_elsewhere(conn)) is not None:
        after_commit(conn, _after_commit(elsewhere, kind, _ENQUEUE, values))
        return None
    row = await conn.fetchrow(_ENQUEUE, *values)
    return row["id"] if row else None


_ENQUEUE_MANY = f"""
    WITH jobs AS (
        INSERT INTO infra.jobs (queue, kind, args, priority, run_at, max_attempts)
        SELECT $1, $2, a.args::jsonb, $4, coalesce($5, now()), $6
        FROM unnest($3::text[]) WITH ORDINALITY AS a (args, n)
        ORDER BY a.n
        RETURNING id
    ), wake AS (
        SELECT pg_notify('{CHANNEL}', $1) WHERE coalesce($5, now()) <= now()
    )
    SELECT id FROM jobs, {WAKE} ORDER BY id
"""


async def enqueue_many(
    conn: asyncpg.Connection,
    kind: JobKind,
    many_args: list[dict[str, Any]],
    *,
    queue: str | None = None,
    priority: int = 0,
    run_at: datetime | None = None,
) -> list[int]:
    """Enqueue one job per arguments dict in a single round trip; return their ids in order
    (none when they wait for the commit of a transaction in another database, as enqueue's)."""
    if not many_args:
        return []
    values = (queue or kind.queue, kind.name, [kind.encode(args) for args in many_args],
              priority, run_at, kind.max_attempts)  # fmt: skip
    if (elsewhere := queue_elsewhere(conn)) is not None:
        after_commit(conn, _after_commit(elsewhere, kind, _ENQUEUE_MANY, values))
        return []
    rows = await conn.fetch(_ENQUEUE_MANY, *values)
    return [row["id"] for row in rows]


def _after_commit(pool: asyncpg.Pool, kind: JobKind, statement: str, values: tuple):
    async def enqueue_committed() -> None:
        try:
            async with acquire(pool, ACQUIRE_TIMEOUT) as conn:
                await conn.execute(statement, *values)
        except DATABASE_OUTAGE:
            # The write has committed and its job is lost: say so loudly.
            log.exception(
                "job lost: could not enqueue it after its write", extra={"kind": kind.name}
            )

    return enqueue_committed


def _claimed(rows: list[asyncpg.Record]) -> list[ClaimedJob]:
    ordered = sorted(rows, key=lambda r: (-r["priority"], r["run_at"], r["id"]))
    return [
        ClaimedJob(
            id=r["id"],
            queue=r["queue"],
            kind=r["kind"],
            args=json.loads(r["args"]),
            attempts=r["attempts"],
            max_attempts=r["max_attempts"],
        )
        for r in ordered
    ]


# infra.claim_jobs (queue migration 0002) takes the jobs, highest priority first, then by due
# time; SKIP LOCKED lets any number of workers claim at once without waiting for each other.
_CLAIM = """
    SELECT id, queue, kind, args::text AS args, priority, run_at, attempts, max_attempts
    FROM infra.claim_jobs($1, $2, $3, $4, $5, $6)
"""


async def finish_and_claim(
    conn: asyncpg.Connection,
    process_id: UUID,
    finished: list[int],
    limit: int,
    queues: tuple[str, ...],
    skip_kinds: list[str],
) -> list[ClaimedJob]:
    """Mark `finished` done and claim up to `limit` due jobs of other kinds, in one statement."""
    rows = await conn.fetch(_CLAIM, process_id, list(queues), limit, skip_kinds, None, finished)
    return _claimed(rows)


async def claim_limited(
    conn: asyncpg.Connection,
    process_id: UUID,
    kind: str,
    concurrency: int,
    limit: int,
    queues: tuple[str, ...],
) -> list[ClaimedJob]:
    """Claim jobs of a kind that may only run `concurrency` at a time across all workers.

    A transaction-scoped advisory lock per kind makes "count the running ones, then claim the
    rest" atomic across workers.
    """
    due = await conn.fetchval(
        """
        SELECT EXISTS (
            SELECT 1 FROM infra.jobs
            WHERE state = 'pending' AND kind = $1 AND run_at <= now()
              AND (cardinality($2::text[]) = 0 OR queue = ANY($2::text[]))
        )
        """,
        kind,
        list(queues),
    )
    if not due:
        return []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('microblog.job.' || $1))", kind)
        running = await conn.fetchval(
            "SELECT count(*) FROM infra.jobs WHERE state = 'running' AND kind = $1", kind
        )
        free = min(concurrency - running, limit)
        if free <= 0:
            return []
        rows = await conn.fetch(_CLAIM, process_id, list(queues), free, [], kind, [])
    return _claimed(rows)


async def retry_later(
    conn: asyncpg.Connection, job_id: int, process_id: UUID, error: str, run_at: datetime
) -> None:
    await conn.execute(
        """
        UPDATE infra.jobs SET state = 'pending', run_at = $4, locked_by = NULL, last_error = $3
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        """,
        job_id,
        process_id,
        error,
        run_at,
    )


async def mark_failed(conn: asyncpg.Connection, job_id: int, process_id: UUID, error: str) -> None:
    await conn.execute(
        """
        UPDATE infra.jobs SET state = 'failed', finished_at = now(), locked_by = NULL,
            last_error = $3
        WHERE id = $1 AND locked_by = $2 AND state = 'running'
        """,
        job_id,
        process_id,
        error,
    )


async def hand_back(conn: asyncpg.Connection, process_id: UUID, job_ids: list[int]) -> int:
    """Return claimed jobs to the queue untouched: the attempt this worker made does not count."""
    return await conn.fetchval(
        f"""
        WITH back AS (
            UPDATE infra.jobs SET state = 'pending', locked_by = NULL, run_at = now(),
                attempts = greatest(attempts - 1, 0)
            WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND state = 'running'
            RETURNING queue
        ), wake AS (
            SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM back) AS q
        )
        SELECT count(*) FROM back, {WAKE}
        """,
        job_ids,
        process_id,
    )
