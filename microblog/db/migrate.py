"""Numbered, forward-only .sql migrations, recorded in schema_migrations.

Each file runs in its own transaction. The whole run holds a session advisory lock, so any
number of instances may call migrate at once and each file is still applied exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Arbitrary but fixed: every microblog process agrees on it, nothing else uses it.
ADVISORY_LOCK_KEY = 0x6D6963726F_626C6F67 & 0x7FFFFFFFFFFFFFFF


class OutdatedSchema(RuntimeError):
    """The database lacks migrations this build needs."""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.iterdir()):
        if FILE_NAME.match(path.name):
            migrations.append(Migration(version=path.stem, path=path))
    return migrations


async def _applied_versions(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM schema_migrations")
    return {row["version"] for row in rows}


async def pending_migrations(conn: asyncpg.Connection) -> list[Migration]:
    applied = await _applied_versions(conn)
    return [m for m in available_migrations() if m.version not in applied]


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply every pending migration; return the versions this call applied."""
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
        for migration in await pending_migrations(conn):
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                )
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)


async def ensure_schema(conn: asyncpg.Connection, *, migrate: bool) -> list[str]:
    """Bring the schema up to date (migrate=True) or refuse to run on an outdated one."""
    if migrate:
        return await apply_migrations(conn)
    pending = await pending_migrations(conn)
    if pending:
        names = ", ".join(m.version for m in pending)
        raise OutdatedSchema(
            f"the database schema is outdated ({len(pending)} pending: {names}); "
            "run `microblog migrate` first"
        )
    return []
