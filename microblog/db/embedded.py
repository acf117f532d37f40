"""The zero-setup database: one embedded PostgreSQL per data folder (the pgserver package).

Every process started with the same MICROBLOG_DATA_DIR joins the same server: pgserver keeps a
list of the processes using it inside the data folder and stops the server when the last one
exits. As root, pgserver runs PostgreSQL as its own system user and widens the permissions on
the path to its binaries and to the data folder so that user can reach them.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from contextlib import suppress
from pathlib import Path

import asyncpg

DATABASE_NAME = "microblog"


def start_embedded_server(data_dir: Path) -> str:
    """Start the server kept in data_dir, or join the one already running; return its URL.

    Blocking (initdb on first use takes a few seconds): call it from a thread.
    """
    # pgserver keeps its lock in the user's runtime folder; without XDG_RUNTIME_DIR (services,
    # containers) platformdirs falls back to /tmp/runtime-<uid> and warns: that fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver  # imported here: only the embedded default needs its binaries

    # pgserver narrates every step at INFO; its warnings and errors still come through.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server.get_uri(DATABASE_NAME)


async def create_database_if_missing(server_url: str, name: str) -> None:
    """CREATE DATABASE name on the server of server_url, tolerating a concurrent creator."""
    conn = await asyncpg.connect(server_url, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        # Another process started from the same folder may create it first: that is fine.
        if not exists:
            with suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def run_in_foreground(data_dir: Path) -> None:
    """`microblog db`: keep the embedded server up until SIGTERM/SIGINT, printing its URL."""
    from microblog.signals import stop_event

    stop = stop_event()
    url = await asyncio.to_thread(start_embedded_server, data_dir)
    await create_database_if_missing(url, DATABASE_NAME)
    print(url, flush=True)
    await stop.wait()
