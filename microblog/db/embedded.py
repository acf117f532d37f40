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
import time
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import asyncpg
import psutil

if TYPE_CHECKING:
    from pgserver import PostgresServer

DATABASE_NAME = "microblog"
# `db --replica` keeps its replica in this folder of the data folder, and its URL in a file
# there, where every process started from the same data folder finds it.
REPLICA_FOLDER = "replica"
REPLICA_URL_FILE = "url"

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class EmbeddedServer:
    """The embedded server a process uses, and how it came to run."""

    url: str
    data_dir: Path
    version: str  # PostgreSQL's major version, as the data folder records it
    how: str  # "created" (first start: initdb), "started", or "joined" (already running)

    def describe(self) -> str:
        """One line for the person who started the process."""
        where = _shown(self.data_dir)
        if self.how == "created":
            return (
                f"embedded PostgreSQL {self.version} created in {where} (first start, a few "
                f"seconds); to start afresh, stop every microblog process and delete {where}"
            )
        if self.how == "started":
            return f"embedded PostgreSQL {self.version} started from {where}"
        return f"joined the embedded PostgreSQL {self.version} already running from {where}"


def _shown(folder: Path) -> str:
    """./var for a folder under the working directory, else the whole path."""
    try:
        return f"./{folder.relative_to(Path.cwd())}"
    except ValueError:
        return str(folder)


def import_pgserver() -> ModuleType:
    """The pgserver package, imported on first use: only the embedded database needs it."""
    # pgserver keeps its lock in the user's runtime folder; without XDG_RUNTIME_DIR (services,
    # containers) platformdirs falls back to /tmp/runtime-<uid> and warns: that fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver

    # pgserver narrates every step at INFO; its warnings and errors still come through.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def start_embedded_server(data_dir: Path) -> EmbeddedServer:
    """Start the server kept in data_dir, or join the one already running.

    Blocking (initdb on first use takes a few seconds): call it from a thread.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    first_start = not (pgdata / "PG_VERSION").exists()
    asked_at = int(time.time())  # postmaster.pid records whole seconds
    server = import_pgserver().get_server(pgdata, cleanup_mode="stop")
    _count_only_live_users(server)
    started_at = server.get_postmaster_info().start_time.timestamp()
    how = "created" if first_start else "started" if started_at >= asked_at else "joined"
    version = (pgdata / "PG_VERSION").read_text().strip()
    return EmbeddedServer(server.get_uri(DATABASE_NAME), data_dir, version, how)


async def open_embedded_database(data_dir: Path) -> EmbeddedServer:
    """The embedded server, started or joined, with the app's database created on it."""
    embedded = await asyncio.to_thread(start_embedded_server, data_dir)
    await create_database_if_missing(embedded.url, DATABASE_NAME)
    return embedded


def embedded_replica_urls(data_dir: Path) -> tuple[str, ...]:
    """The URL of the replica `db --replica` made in data_dir, if it ever did."""
    try:
        return ((data_dir / REPLICA_FOLDER / REPLICA_URL_FILE).read_text().strip(),)
    except FileNotFoundError:
        return ()


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
    embedded = await open_embedded_database(data_dir)
    log.info(embedded.describe())
    print(embedded.url, flush=True)
    await stop.wait()
