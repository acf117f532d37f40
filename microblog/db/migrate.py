"""Numbered, forward-only .sql migrations, recorded in schema_migrations.

Migrations come in sets, one per database role: the app tables (DATABASE_URL), the job queue
(QUEUE_DATABASE_URL), the cache (CACHE_DATABASE_URL). By default all roles share one database
and every set is applied there. Each file runs in its own transaction; the whole run holds a
session advisory lock, so any number of instances may migrate at once and each file is still
applied exactly once. That lock needs a session that lasts: migrations connect to the server
itself (DATABASE_DIRECT_URL), never through a transaction-mode pooler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from microblog.db.pools import Pools, session_connection

FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Arbitrary but fixed: every microblog process agrees on it, nothing else uses it.
ADVISORY_LOCK_KEY = 0x6D6963726F_626C6F67 & 0x7FFFFFFFFFFFFFFF
PACKAGE = Path(__file__).resolve().parent.parent
APPLICATION_NAME = "microblog migrate"


class OutdatedSchema(RuntimeError):
    """The database lacks migrations this build needs."""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MigrationSet:
    name: str
    directory: Path

    def migrations(self) -> list[Migration]:
        return [
            Migration(version=f"{self.name}/{path.stem}", path=path)
            for path in sorted(self.directory.iterdir())
            if FILE_NAME.match(path.name)
        ]


APP = MigrationSet("app", PACKAGE / "db" / "migrations")
QUEUE = MigrationSet("queue", PACKAGE / "jobs" / "migrations")
CACHE = MigrationSet("cache", PACKAGE / "cache" / "migrations")
ALL = (APP, QUEUE, CACHE)


async def _applied_versions(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM schema_migrations")
    return {row["version"] for row in rows}


async def pending_migrations(
    conn: asyncpg.Connection, sets: tuple[MigrationSet, ...]
) -> list[Migration]:
    applied = await _applied_versions(conn)
    return [m for s in sets for m in s.migrations() if m.version not in applied]


async def apply_migrations(conn: asyncpg.Connection, sets: tuple[MigrationSet, ...]) -> list[str]:
    """Apply every pending migration of these sets; return the versions this call applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = []
        for migration in await pending_migrations(conn, sets):
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                )
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)


def migration_targets(pools: Pools) -> list[tuple[str, tuple[MigrationSet, ...]]]:
    """Which sets go to which server, by the URL that reaches it directly: one database gets
    them all unless roles are split."""
    urls = pools.urls
    targets: dict[str, tuple[MigrationSet, ...]] = {}
    for url, migration_set in ((urls.primary, APP), (urls.queue, QUEUE), (urls.cache, CACHE)):
        target = urls.for_sessions(url)
        targets[target] = (*targets.get(target, ()), migration_set)
    return list(targets.items())


async def migrate_databases(pools: Pools) -> list[str]:
    """Apply every pending migration to every database; return the versions applied."""
    applied = []
    for url, sets in migration_targets(pools):
        async with session_connection(url, application_name=APPLICATION_NAME) as conn:
            applied += await apply_migrations(conn, sets)
    return applied


async def ensure_schema(pools: Pools, *, migrate: bool) -> list[str]:
    """Bring every database up to date (migrate=True) or refuse to run on an outdated one."""
    if migrate:
        return await migrate_databases(pools)
    pending = []
    for url, sets in migration_targets(pools):
        async with session_connection(url, application_name=APPLICATION_NAME) as conn:
            pending += await pending_migrations(conn, sets)
    if pending:
        names = ", ".join(m.version for m in pending)
        raise OutdatedSchema(
            f"the database schema is outdated ({len(pending)} pending: {names}); "
            "run `microblog migrate` first"
        )
    return []
