"""Reads that may be a moment old: served by a replica when one can, else by the primary.

A `Reading` picks where it goes from what the replica monitor (db/replicas.py) already knows,
so routing adds no query, and offers the connection's `fetch`, `fetchrow` and `fetchval`. It
takes its connection at its first statement. When the replica fails a statement (it is down,
unreachable, slower than REPLICA_WAIT, or cancels the statement for a conflict with
recovery), that statement and every later one of the same read run on the primary, and the
replica is marked down until the monitor's next good probe: a replica's fault never reaches
the visitor. Any other error, a bug in a query or a write sent to a replica, is raised as it
is.

Each statement commits on its own, as on a pooled connection to the primary: a read that moves
to the primary halfway sees a newer state in its later statements, never an older one.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

import asyncpg

from microblog.db.lsn import Lsn
from microblog.db.outage import CONNECT_ERRORS, REPLICA_FAULTS
from microblog.db.pools import acquire
from microblog.db.replicas import Replicas

log = logging.getLogger(__name__)

# A replica answers within this long, or the primary serves the read: far above a read's usual
# milliseconds, far below a visitor's patience, and a stalled replica holds no request for long.
REPLICA_WAIT = 2.0


class Reading:
    """`async with Reading(...) as conn:` then `conn.fetch(...)` and the like, as on a
    connection. One per read of a request: open it, run the read, close it."""

    __slots__ = ("_held", "_primary", "_replica", "_replicas", "_required", "_wait")

    def __init__(
        self, primary: asyncpg.Pool, replicas: Replicas, required: Lsn | None, *, wait: float
    ) -> None:
        self._primary, self._replicas, self._required, self._wait = (
            primary, replicas, required, wait,
        )  # fmt: skip
        self._replica: str | None = None
        self._held: acquire | None = None

    async def __aenter__(self) -> Reading:
        self._replica = self._replicas.choose(self._required).replica
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._release()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run("fetch", query, args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._run("fetchrow", query, args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run("fetchval", query, args)

    async def _run(self, method: str, query: str, args: tuple) -> Any:
        if self._replica is not None:
            try:
                conn = await self._connection(self._replicas.pool(self._replica), REPLICA_WAIT)
            except CONNECT_ERRORS as error:  # refused, unknown database, wrong password ...
                await self._fail_over(error)
            else:
                try:
                    return await getattr(conn, method)(query, *args, timeout=REPLICA_WAIT)
                except asyncpg.DataError:
                    raise  # an argument refused before it was sent: a bug, not the replica
                except REPLICA_FAULTS as error:
                    _discard(conn)
                    await self._fail_over(error)
        conn = await self._connection(self._primary, self._wait)
        return await getattr(conn, method)(query, *args)

    async def _connection(self, pool: asyncpg.Pool, wait: float) -> asyncpg.Connection:
        if self._held is None:
            held = acquire(pool, wait)
            conn = await held.__aenter__()
            self._held = held
            return conn
        return self._held.conn

    async def _fail_over(self, error: BaseException) -> None:
        replica, self._replica = self._replica, None
        await self._release()
        log.debug("read failed on a replica; the primary serves it", extra={"replica": replica})
        self._replicas.mark_down(replica, error)

    async def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.__aexit__(None, None, None)


def _discard(conn: asyncpg.Connection) -> None:
    """Close a connection a fault left in any state, without waiting on its server (a lost one
    its pool has taken back already)."""
    with suppress(asyncpg.InterfaceError):  # "connection has been released back to the pool"
        conn.terminate()
