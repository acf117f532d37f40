"""What each section of the console shows, read fresh on every request (the page refreshes
them every few seconds). Reads go to the primary, the queue's and the cache's databases, never
to a replica: an operator acts on what is true now."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from microblog.admin import queries
from microblog.db.pools import Pools, acquire
from microblog.db.replica_status import ReplicaStatus
from microblog.db.transactions import ACQUIRE_TIMEOUT
from microblog.jobs import admin as jobs_admin
from microblog.jobs import processes
from microblog.jobs.queue import FailedJob
from microblog.jobs.recurring import LastRun, Recurring, last_runs

FAILED_SHOWN = 50


@dataclass(frozen=True)
class Queues:
    depth: list[jobs_admin.QueueDepth]
    totals: dict[str, int]  # by state, over every queue
    oldest_due_seconds: float | None
    finished_last_hour: int

    @property
    def jobs_per_minute(self) -> float:
        return self.finished_last_hour / 60


async def queues(pools: Pools) -> Queues:
    async with acquire(pools.queue, ACQUIRE_TIMEOUT) as conn:
        depth = await jobs_admin.depth(conn)
        finished = await jobs_admin.finished_last_hour(conn)
    totals = dict.fromkeys(("pending", "running", "scheduled", "failed"), 0)
    for row in depth:
        totals[row.state] = totals.get(row.state, 0) + row.count
    ages = [row.oldest_due_seconds for row in depth if row.oldest_due_seconds is not None]
    return Queues(depth, totals, max(ages, default=None), finished)


@dataclass(frozen=True)
class Failed:
    jobs: list[FailedJob]
    kinds: dict[str, int]  # failed jobs per kind, for the filter
    kind: str | None  # the filter in force


async def failed(pools: Pools, kind: str | None) -> Failed:
    async with acquire(pools.queue, ACQUIRE_TIMEOUT) as conn:
        jobs = await jobs_admin.failed(conn, FAILED_SHOWN, kind=kind)
        kinds = await jobs_admin.failed_kinds(conn)
    return Failed(jobs, kinds, kind)


@dataclass(frozen=True)
class RecurringRow:
    task: Recurring
    last: LastRun | None
    next_slot: datetime


async def recurring(pools: Pools, tasks: tuple[Recurring, ...]) -> list[RecurringRow]:
    async with acquire(pools.queue, ACQUIRE_TIMEOUT) as conn:
        now = await conn.fetchval("SELECT now()")  # the database clock, as the scheduler's
        last = await last_runs(conn)
    return [RecurringRow(task, last.get(task.name), task.next_slot(now)) for task in tasks]


@dataclass(frozen=True)
class Processes:
    alive: list[processes.ProcessRow]
    running: dict  # jobs running, by process id
    dead: list[processes.DeadProcess]


async def processes_section(pools: Pools, heartbeat_timeout: float) -> Processes:
    async with acquire(pools.queue, ACQUIRE_TIMEOUT) as conn:
        alive = await processes.alive(conn, heartbeat_timeout)
        running = await jobs_admin.running_by_process(conn)
        dead = await processes.recently_dead(conn)
    return Processes(alive, running, dead)


@dataclass(frozen=True)
class CacheSection:
    enabled: bool
    size: queries.CacheSize
    hits: int
    misses: int

    @property
    def hit_rate(self) -> float | None:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


async def cache(pools: Pools, *, enabled: bool, hits: int, misses: int) -> CacheSection:
    async with acquire(pools.cache, ACQUIRE_TIMEOUT) as conn:
        size = await queries.cache_size(conn)
    return CacheSection(enabled, size, hits, misses)


@dataclass(frozen=True)
class ReplicaRow:
    status: ReplicaStatus
    summary: str
    probed_seconds_ago: float | None


def replicas(pools: Pools) -> list[ReplicaRow]:
    now = time.time()
    return [
        ReplicaRow(status, summary, now - status.probed_at if status.probed_at else None)
        for status, summary in zip(pools.replicas.statuses, pools.replicas.summaries(), strict=True)
    ]


async def connections(pools: Pools) -> queries.Connections:
    async with acquire(pools.primary, ACQUIRE_TIMEOUT) as conn:
        return await queries.connections(conn)


async def audit(pools: Pools) -> list[queries.AuditEntry]:
    async with acquire(pools.primary, ACQUIRE_TIMEOUT) as conn:
        return await queries.audit_log(conn)
