"""Database access for request handlers: the pools live on the app, never on g or a global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from quart import current_app

from microblog.db.pools import Pools

# A request waits this long for a free connection before the visitor gets a 503 page.
ACQUIRE_TIMEOUT = 10.0


def pools() -> Pools:
    return current_app.extensions["pools"]


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection for reads; each statement commits on its own."""
    async with pools().primary.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
        yield conn


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """A connection inside one transaction: a user action commits whole or not at all."""
    async with pools().primary.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
        yield conn
