"""What "the database is down" means, for every part that degrades instead of failing.

An outage is the connection failing: the server cannot be reached, refuses connections for
now, or drops them (a restart, a failover, too many clients). Those pass, and the parts that
can go on without the database (the cache, the rate limits, heartbeats, workers, listeners,
error pages) carry on until it is back. Anything else PostgreSQL answers, a syntax error, an
unknown column, a violated constraint, is a bug in a query: it is raised and seen, never
taken for an outage.
"""

from __future__ import annotations

import asyncpg

DATABASE_OUTAGE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # no connection, free or new, within the wait
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-query
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)

# Connecting fails in more ways than a connection does: a server that refuses this client (a
# wrong password, no such database) cannot be used either. What code that connects, or probes
# whether a server can be used at all, catches; every reason is the operator's to fix.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    *DATABASE_OUTAGE,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def is_outage(error: BaseException) -> bool:
    return isinstance(error, DATABASE_OUTAGE)


# What a replica fails a statement or a probe with that the primary would not: an outage; asyncpg
# refusing a connection that a dying server left half-way through the protocol ("another
# operation is in progress", "connection is closed"); and hot standby's conflicts with recovery:
# "canceling statement due to conflict with recovery" (40001, or 40P01 for a deadlock with
# replay), and the database being dropped under it (57P04). The primary then serves the read.
REPLICA_FAULTS: tuple[type[BaseException], ...] = (
    *DATABASE_OUTAGE,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.DatabaseDroppedError,
)
