"""Database access for request handlers: the pools live on the app, never on g or a global."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from quart import current_app, g

from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import Pools, acquire
from microblog.jobs.queue import enqueue
from microblog.jobs.registry import JobKind

# A request waits this long for a free connection before the visitor gets a 503 page.
ACQUIRE_TIMEOUT = 10.0

log = logging.getLogger(__name__)

_after_commit: ContextVar[list[tuple[JobKind, dict[str, Any]]] | None] = ContextVar(
    "jobs_after_commit", default=None
)


def pools() -> Pools:
    return current_app.extensions["pools"]


def connection() -> acquire:
    """A connection for reads (`async with connection() as conn`); each statement commits on
    its own. The pool's own context manager, not a generator around it: pages take one or
    two of these on every request."""
    return acquire(pools().primary, ACQUIRE_TIMEOUT)


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """A connection inside one transaction: a user action commits whole or not at all."""
    jobs: list[tuple[JobKind, dict[str, Any]]] = []
    token = _after_commit.set(jobs)
    try:
        async with acquire(pools().primary, ACQUIRE_TIMEOUT) as conn, conn.transaction():
            yield conn
    finally:
        _after_commit.reset(token)
    g.committed = True
    if jobs:
        await _enqueue_after_commit(jobs)


def committed() -> bool:
    """Whether this request has committed a write."""
    return g.get("committed", False)


async def enqueue_job(conn: asyncpg.Connection, kind: JobKind, args: dict[str, Any]) -> None:
    """Enqueue a job that follows from the write in progress on `conn`.

    With the queue in the primary database (the default) the job commits or rolls back with
    the write. With QUEUE_DATABASE_URL elsewhere it is enqueued just after the commit.
    """
    if pools().queue is pools().primary:
        await enqueue(conn, kind, args)
        return
    kind.encode(args)  # bad arguments fail now, before the write commits
    pending = _after_commit.get()
    if pending is None:
        raise RuntimeError("enqueue_job() must be called inside transaction()")
    pending.append((kind, args))


async def _enqueue_after_commit(jobs: list[tuple[JobKind, dict[str, Any]]]) -> None:
    try:
        async with acquire(pools().queue, ACQUIRE_TIMEOUT) as conn, conn.transaction():
            for kind, args in jobs:
                await enqueue(conn, kind, args)
    except DATABASE_OUTAGE:
        # The write has committed; only its follow-up jobs are lost. Say so loudly.
        log.exception("could not enqueue jobs after commit", extra={"jobs": len(jobs)})
