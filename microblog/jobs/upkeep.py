"""Keeping the queue tidy: jobs of vanished processes go back, finished jobs are deleted."""

from __future__ import annotations

import asyncpg

from microblog.jobs.queue import CHANNEL, WAKE


async def release_orphans(conn: asyncpg.Connection) -> int:
    """Jobs held by a process that is no longer registered go back to the queue.

    The interrupted attempt counts, so a job that keeps killing its worker ends up failed.
    """
    rows = await conn.fetch(
        f"""
        WITH released AS (
            UPDATE infra.jobs j SET
                state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
                finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
                locked_by = NULL, run_at = now(),
                last_error = 'the process running it stopped without finishing it'
            WHERE j.state = 'running'
              AND NOT EXISTS (SELECT 1 FROM infra.processes p WHERE p.id = j.locked_by)
            RETURNING j.queue
        ), wake AS (
            SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM released) AS q
        )
        SELECT count(*) AS released FROM released, {WAKE}
        """
    )
    return rows[0]["released"] if rows else 0


async def prune_finished(conn: asyncpg.Connection, older_than_seconds: float) -> int:
    """Delete finished and discarded jobs older than the retention, in bounded batches."""
    total = 0
    while True:
        deleted = await conn.fetchval(
            """
            WITH old AS (
                SELECT id FROM infra.jobs
                WHERE state IN ('finished', 'discarded')
                  AND finished_at < now() - make_interval(secs => $1)
                LIMIT 5000
            ), gone AS (
                DELETE FROM infra.jobs WHERE id IN (SELECT id FROM old) RETURNING 1
            )
            SELECT count(*) FROM gone
            """,
            older_than_seconds,
        )
        total += deleted
        if deleted < 5000:
            break
    await conn.execute(
        "DELETE FROM infra.recurring_runs WHERE slot < now() - make_interval(secs => $1)",
        older_than_seconds,
    )
    return total
