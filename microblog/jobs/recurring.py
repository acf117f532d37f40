"""Recurring jobs: each time slot runs exactly once, however many workers are running.

Every worker runs the scheduler. At each slot boundary (read from the database clock, so
machines with skewed clocks agree), each worker tries to insert (name, slot) into
infra.recurring_runs; the one insert that succeeds enqueues the slot's job in the same
transaction. Slots missed while no worker was running are not made up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from croniter import croniter

from microblog.db.outage import DATABASE_OUTAGE
from microblog.jobs.queue import enqueue
from microblog.jobs.registry import JobKind

log = logging.getLogger(__name__)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Recurring:
    """A job enqueued once per slot: every `every`, or at each time of a cron expression."""

    name: str
    kind: JobKind
    every: timedelta | None = None
    cron: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"recurring {self.name}: give exactly one of every= or cron=")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"recurring {self.name}: every= must be positive")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"recurring {self.name}: {self.cron!r} is not a cron expression")
        self.kind.encode(self.args)  # bad arguments fail at start-up, not at the first slot

    def current_slot(self, now: datetime) -> datetime:
        if self.every is not None:
            return EPOCH + ((now - EPOCH) // self.every) * self.every
        return croniter(self.cron, now + timedelta(microseconds=1)).get_prev(datetime)

    def next_slot(self, now: datetime) -> datetime:
        if self.every is not None:
            return self.current_slot(now) + self.every
        return croniter(self.cron, now).get_next(datetime)


async def schedule_due(
    conn: asyncpg.Connection, recurring: tuple[Recurring, ...]
) -> tuple[datetime, datetime]:
    """Enqueue the current slot of every task no other worker has taken.

    Returns the next slot boundary and the database's now().
    """
    now = await conn.fetchval("SELECT now()")
    for task in recurring:
        slot = task.current_slot(now)
        async with conn.transaction():
            won = await conn.fetchval(
                """
                INSERT INTO infra.recurring_runs (name, slot) VALUES ($1, $2)
                ON CONFLICT DO NOTHING RETURNING true
                """,
                task.name,
                slot,
            )
            if won:
                job_id = await enqueue(
                    conn,
                    task.kind,
                    task.args,
                    unique_key=f"recurring:{task.name}:{slot.isoformat()}",
                )
                await conn.execute(
                    "UPDATE infra.recurring_runs SET job_id = $3 WHERE name = $1 AND slot = $2",
                    task.name,
                    slot,
                    job_id,
                )
    return min(task.next_slot(now) for task in recurring), now


@dataclass(frozen=True)
class LastRun:
    slot: datetime
    job_id: int | None
    state: str | None  # of its job; None once the job has been pruned


async def last_runs(conn: asyncpg.Connection) -> dict[str, LastRun]:
    """The latest slot each recurring task ran in, and how its job stands."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (r.name) r.name, r.slot, r.job_id, j.state
        FROM infra.recurring_runs r LEFT JOIN infra.jobs j ON j.id = r.job_id
        ORDER BY r.name, r.slot DESC
        """
    )
    return {row["name"]: LastRun(row["slot"], row["job_id"], row["state"]) for row in rows}


async def run_now(conn: asyncpg.Connection, task: Recurring) -> int | None:
    """Enqueue the task's job outside its schedule; the next slot still runs as planned."""
    return await enqueue(conn, task.kind, task.args)


async def run_scheduler(
    pool: asyncpg.Pool, recurring: tuple[Recurring, ...], stop: asyncio.Event
) -> None:
    if not recurring:
        return
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                next_slot, db_now = await schedule_due(conn, recurring)
            delay = max((next_slot - db_now).total_seconds(), 0.0)
        except DATABASE_OUTAGE as error:
            log.warning(
                "scheduler: database error", extra={"error": f"{type(error).__name__}: {error}"}
            )
            delay = 1.0
        try:
            async with asyncio.timeout(delay):
                await stop.wait()
        except TimeoutError:
            pass
