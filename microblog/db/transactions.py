"""Transactions, and the work that follows their commit.

A write often has duties beyond its own rows: a cached page that shows it goes stale, a job
must reach a queue in another database, this process's copy of the writer's row is out of
date. Each must happen once the write has committed, and never after a rollback. The code
that writes says what it changed, inside the transaction and on its connection:

    changed(conn, POSTS, post_id)

and whoever acts on such a change subscribed to it once, when the process was put together
(microblog/duties.py):

    transactions.on([POSTS, LIKES], invalidate_public_page)

so a new kind of write needs no list of duties, and a new duty no visit to every writer.
Work that belongs to one transaction rather than to a kind of change registers on the
transaction itself, `after_commit(conn, callback)`; work after every commit of a process
registers with `transactions.on_every_commit(callback)`. Rows that must commit with the changes
rather than follow them (the live updates' events) are written by what registers with
`transactions.before_commit(writer)`: the transaction's last statements, given every change.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import asyncpg

from microblog.db.pools import Pools, acquire

log = logging.getLogger(__name__)

# A transaction waits this long for a free connection (a request then gets a 503 page).
ACQUIRE_TIMEOUT = 10.0

Callback = Callable[[], Awaitable[None]]
# A duty gets the ids of what changed (posts for POSTS, users for PROFILES, ...).
Duty = Callable[[frozenset[int]], Awaitable[None]]


@dataclass(frozen=True)
class Change:
    """A kind of change that others act on once it commits."""

    name: str
    description: str  # as the operator's guide lists it


# A writer gets the transaction's connection and every change it made, before its commit.
Writer = Callable[[asyncpg.Connection, Mapping[Change, set[int]]], Awaitable[None]]


class _InProgress:
    __slots__ = ("callbacks", "changes", "conn", "queue")

    def __init__(self, conn: asyncpg.Connection, queue: asyncpg.Pool | None) -> None:
        self.conn = conn
        self.queue = queue
        self.callbacks: list[Callback] = []
        self.changes: dict[Change, set[int]] = {}


_current: ContextVar[_InProgress | None] = ContextVar("transaction_in_progress", default=None)


def _in_progress(conn: asyncpg.Connection) -> _InProgress:
    transaction = _current.get()
    if transaction is None or transaction.conn is not conn:
        # Outside one, the duties of this write would be lost without a word.
        raise RuntimeError("a write that others follow must run in a transaction of Transactions")
    return transaction


def changed(conn: asyncpg.Connection, change: Change, subject: int) -> None:
    """Record that the transaction on `conn` changed `subject` (an id) in this way."""
    _in_progress(conn).changes.setdefault(change, set()).add(subject)


def after_commit(conn: asyncpg.Connection, callback: Callback) -> None:
    """Run `callback` once the transaction on `conn` has committed; never after a rollback."""
    _in_progress(conn).callbacks.append(callback)


def queue_elsewhere(conn: asyncpg.Connection) -> asyncpg.Pool | None:
    """The queue's pool when `conn` is in a transaction that cannot hold jobs, because the
    queue lives in another database; None when jobs can go on `conn` itself."""
    transaction = _current.get()
    if transaction is None or transaction.conn is not conn:
        return None
    return transaction.queue


class Transactions:
    """Opens the transactions of one process and runs what follows their commits."""

    def __init__(self, pools: Pools, *, wait: float = ACQUIRE_TIMEOUT) -> None:
        self._pool = pools.primary
        self._queue = None if pools.queue is pools.primary else pools.queue
        self._wait = wait
        self._duties: dict[Change, list[Duty]] = {}
        self._every_commit: list[Callback] = []
        self._writers: list[Writer] = []

    def on(self, changes: Iterable[Change], duty: Duty) -> None:
        """After a commit that made any of `changes`, run `duty` once with their subjects."""
        for change in changes:
            self._duties.setdefault(change, []).append(duty)

    def on_every_commit(self, callback: Callback) -> None:
        self._every_commit.append(callback)

    def before_commit(self, writer: Writer) -> None:
        """Let `writer` add the last statements of every transaction that changed anything:
        they commit with it or not at all."""
        self._writers.append(writer)

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside one transaction: a user action commits whole or not at all.

        What follows the commit runs once the connection is back in its pool: a duty may need
        one of its own (the cache's and the queue's pools may be this one)."""
        async with (
            acquire(self._pool, self._wait) as conn,
            _begin(conn, self._queue, self._writers) as done,
        ):
            yield conn
        await _run(self._work_after(done))

    def _work_after(self, transaction: _InProgress) -> list[Callback]:
        subjects: dict[Duty, set[int]] = {}
        for change, ids in transaction.changes.items():
            for duty in self._duties.get(change, ()):
                subjects.setdefault(duty, set()).update(ids)
        return [
            *transaction.callbacks,
            *(_with(duty, frozenset(ids)) for duty, ids in subjects.items()),
            *self._every_commit,
        ]


@asynccontextmanager
async def without_duties(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction on `conn` whose changes no duty follows: for arranging a test's data,
    whose writes must reach no cache. Jobs it enqueues go into `conn`'s own database."""
    async with _begin(conn, None, ()) as transaction:
        yield
    await _run(transaction.callbacks)


@asynccontextmanager
async def _begin(
    conn: asyncpg.Connection, queue: asyncpg.Pool | None, writers: Iterable[Writer]
) -> AsyncIterator[_InProgress]:
    transaction = _InProgress(conn, queue)
    token = _current.set(transaction)
    try:
        async with conn.transaction():
            yield transaction
            if transaction.changes:
                for writer in writers:
                    await writer(conn, transaction.changes)
    finally:
        _current.reset(token)


async def _run(work: list[Callback]) -> None:
    for callback in work:
        try:
            await callback()
        except Exception:
            # The write has committed: failing the caller now would invite them to make it
            # again. Each duty handles its own outages; anything else is a bug, logged here.
            log.exception("work after a commit failed", extra={"callback": _name(callback)})


def _with(duty: Duty, subjects: frozenset[int]) -> Callback:
    async def run() -> None:
        await duty(subjects)

    run.__qualname__ = _name(duty)
    return run


def _name(callback: Callable) -> str:
    return getattr(callback, "__qualname__", repr(callback))
