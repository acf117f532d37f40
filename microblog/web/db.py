"""Database access for request handlers: the pools live on the app, never on g or a global.

Three ways in, by what the code does (not by the request's method):

- `reading()` for reads that may be a moment old: timelines, profiles, threads, people lists,
  tag pages, pictures (and search and feeds). It may be served by a replica; never by one
  behind the visitor's own last write (web/read_your_writes.py).
- `transaction()` for writes, and for reads made in order to write. Always the primary.
- `connection()` for reads that must see the latest commit of anyone, without writing: the
  visitor's row and session epoch, a log-in's password hash, the page that confirms a
  delete. Always the primary.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import asyncpg

from microblog.db.pools import acquire
from microblog.db.reading import Reading
from microblog.db.transactions import ACQUIRE_TIMEOUT
from microblog.web.read_your_writes import required_position
from microblog.web.state import state


def reading() -> Reading:
    """`async with reading() as conn:` with conn.fetch, fetchrow and fetchval. Each statement
    commits on its own; a replica that fails one hands it, and the rest, to the primary."""
    pools = state().pools
    return Reading(pools.primary, pools.replicas, required_position(), wait=ACQUIRE_TIMEOUT)


def connection() -> acquire:
    """A connection to the primary for reads (`async with connection() as conn`); each
    statement commits on its own. The pool's own context manager, not a generator around it:
    pages take one or two of these on every request."""
    return acquire(state().pools.primary, ACQUIRE_TIMEOUT)


def transaction() -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A connection inside one transaction: a user action commits whole or not at all, and
    what follows its commit (db/transactions.py) runs once it has."""
    return state().transactions()
