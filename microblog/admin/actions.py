"""The console's actions on the queue, each written to the audit log.

The queue may live in a database of its own (QUEUE_DATABASE_URL). When it shares the
primary, an action and its audit row commit together; when not, the audit row is written
once the action has committed, so the log never names an action that did not happen.
Actions on every job matching a filter go in batches (jobs/admin.py), one audit row each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from microblog.admin import queries
from microblog.db.pools import Pools, acquire
from microblog.db.transactions import ACQUIRE_TIMEOUT, Transactions
from microblog.jobs import admin as jobs_admin

T = TypeVar("T")
Matching = Callable[..., Awaitable[int]]


class Operator:
    """Who acts, and where their actions are written."""

    def __init__(self, pools: Pools, transactions: Transactions, *, id: int, name: str) -> None:
        self.pools = pools
        self.transactions = transactions
        self.id = id
        self.name = name

    @property
    def _queue_is_primary(self) -> bool:
        return self.pools.queue is self.pools.primary

    async def record(self, conn: asyncpg.Connection, action: str, details: str) -> None:
        await queries.record(conn, self.id, self.name, action, details)

    async def on_queue(
        self, act: Callable[[asyncpg.Connection], Awaitable[T]], action: str, details: str
    ) -> T:
        """`act` on the queue's database; audited when it did something (a truthy result)."""
        if self._queue_is_primary:
            async with self.transactions() as conn:
                result = await act(conn)
                if result:
                    await self.record(conn, action, details)
            return result
        async with acquire(self.pools.queue, ACQUIRE_TIMEOUT) as conn, conn.transaction():
            result = await act(conn)
        if result:
            async with self.transactions() as conn:
                await self.record(conn, action, details)
        return result

    async def matching(self, act: Matching, action: str, kind: str | None) -> int:
        """`act` (jobs/admin.py's retry_matching or discard_matching) on every failed job of
        `kind`, or of any, batch by batch; one audit row per batch."""
        what = f"of kind {kind}" if kind else "of every kind"

        async def audit(conn: asyncpg.Connection, count: int) -> None:
            details = f"{count} failed job{'s' if count != 1 else ''} {what}"
            if self._queue_is_primary:  # in the batch's own transaction
                await self.record(conn, action, details)
            else:
                async with acquire(self.pools.primary, ACQUIRE_TIMEOUT) as primary:
                    await self.record(primary, action, details)

        async with acquire(self.pools.queue, ACQUIRE_TIMEOUT) as conn:
            return await act(conn, kind, each_batch=audit)

    async def retry_matching(self, kind: str | None) -> int:
        return await self.matching(jobs_admin.retry_matching, "retry failed jobs", kind)

    async def discard_matching(self, kind: str | None) -> int:
        return await self.matching(jobs_admin.discard_matching, "discard failed jobs", kind)
