"""SQL of the console's own tables (operators, admin_audit) and of what it reads elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# The actor of changes made from the shell rather than by an operator's account.
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    details: str
    created_at: datetime


async def is_operator(conn: asyncpg.Connection, user_id: int) -> bool:
    found = await conn.fetchval("SELECT true FROM operators WHERE user_id = $1", user_id)
    return bool(found)


async def grant(conn: asyncpg.Connection, username: str) -> str | None:
    """Make the account an operator; its username as spelt, or None when there is no such user."""
    return await conn.fetchval(
        """
        WITH account AS (SELECT id, username FROM users WHERE lower(username) = lower($1)),
        granted AS (
            INSERT INTO operators (user_id) SELECT id FROM account ON CONFLICT DO NOTHING
        )
        SELECT username FROM account
        """,
        username,
    )


async def revoke(conn: asyncpg.Connection, username: str) -> str | None:
    """The account is an operator no more; its username, or None when there is no such user."""
    return await conn.fetchval(
        """
        WITH account AS (SELECT id, username FROM users WHERE lower(username) = lower($1)),
        revoked AS (DELETE FROM operators WHERE user_id IN (SELECT id FROM account))
        SELECT username FROM account
        """,
        username,
    )


async def record(
    conn: asyncpg.Connection, operator_id: int | None, actor: str, action: str, details: str = ""
) -> None:
    await conn.execute(
        "INSERT INTO admin_audit (operator_id, actor, action, details) VALUES ($1, $2, $3, $4)",
        operator_id,
        actor,
        action,
        details,
    )


async def audit_log(conn: asyncpg.Connection, limit: int = 50) -> list[AuditEntry]:
    rows = await conn.fetch(
        """
        SELECT id, actor, action, details, created_at FROM admin_audit
        ORDER BY id DESC LIMIT $1
        """,
        limit,
    )
    return [AuditEntry(**dict(row)) for row in rows]


@dataclass(frozen=True)
class Connections:
    by_application: dict[str, int]  # client connections per application_name
    max_connections: int

    @property
    def in_use(self) -> int:
        return sum(self.by_application.values())


async def connections(conn: asyncpg.Connection) -> Connections:
    """Client connections to the whole server, by application_name, against its limit."""
    rows = await conn.fetch(
        """
        SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS name, count(*) AS count
        FROM pg_stat_activity WHERE backend_type = 'client backend'
        GROUP BY 1 ORDER BY 2 DESC, 1
        """
    )
    limit = await conn.fetchval("SELECT current_setting('max_connections')::int")
    return Connections({row["name"]: row["count"] for row in rows}, limit)


@dataclass(frozen=True)
class CacheSize:
    entries: int
    bytes: int


async def cache_size(conn: asyncpg.Connection) -> CacheSize:
    row = await conn.fetchrow(
        "SELECT count(*) AS entries, coalesce(sum(byte_size), 0)::bigint AS bytes "
        "FROM infra.cache_entries"
    )
    return CacheSize(**dict(row))
