"""Database access for request handlers: the pools live on the app, never on g or a global."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg

from microblog.db.pools import acquire
from microblog.db.transactions import ACQUIRE_TIMEOUT
from microblog.web.state import state


def connection() -> acquire:
    """A connection for reads (`async with connection() as conn`); each statement commits on
    its own. The pool's own context manager, not a generator around it: pages take one or
    two of these on every request."""
    return acquire(state().pools.primary, ACQUIRE_TIMEOUT)


def transaction() -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A connection inside one transaction: a user action commits whole or not at all, and
    what follows its commit (db/transactions.py) runs once it has."""
    return state().transactions()
