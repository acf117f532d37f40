"""The zero-setup database: one embedded PostgreSQL per data folder (the pgserver package).

Every process started with the same MICROBLOG_DATA_DIR joins the same server: pgserver keeps a
list of the processes using it inside the data folder (pgdata/.handle_pids.json) and stops the
server when the last one exits. As root, pgserver runs PostgreSQL as its own system user and
widens the permissions on the path to its binaries and to the data folder so that user can
reach them.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import psutil

if TYPE_CHECKING:
    from pgserver import PostgresServer

DATABASE_NAME = "microblog"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another account's process: it exists
        return True


def _count_only_live_users(server: PostgresServer) -> None:
    """Make pgserver's list of the server's users leave out processes that have died.

    pgserver takes a process off the list only when that process exits cleanly, and stops the
    server when the list is left empty: one process killed with SIGKILL would keep the server
    running after every other one had gone. Reading the list through this class skips the
    dead. pgserver reads it only under its lock, the same lock a joining process holds while
    it starts or finds the server and adds itself, so a process that is joining is never
    missed. (A dead process's number taken by an unrelated process still counts: the server
    then stays up, as it did before.)
    """
    from pgserver.utils import DiskList

    class LiveUsers(DiskList):
        def get(self) -> list[int]:
            return [pid for pid in super().get() if _alive(pid)]

    server.global_process_id_list = LiveUsers(server.global_process_id_list.path)


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
    _count_only_live_users(server)
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
