"""`microblog db --replica`: a streaming replica of the embedded database, in the foreground.

It lives in MICROBLOG_DATA_DIR/replica. The first start copies the primary with pg_basebackup;
later starts run the same copy, which streams from where it stopped: a replication slot makes
the primary keep the WAL the replica has not received yet, up to max_slot_wal_keep_size (set to
WAL_KEPT when it has no limit). A replica that fell further behind than that, or
whose primary was made anew, is copied again. Its URL goes into replica/url, where every
process started from the same data folder finds it.
"""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import sys
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import asyncpg

from microblog.db.embedded import DATABASE_NAME, REPLICA_FOLDER, REPLICA_URL_FILE
from microblog.db.outage import CONNECT_ERRORS
from microblog.db.standby import (
    PostmasterFile,
    Standby,
    StandbyError,
    base_backup,
    postgres_user,
    prepare_folder,
    socket_dir_for,
)
from microblog.signals import stop_event

SLOT = "microblog_replica"
WAL_KEPT = "1GB"
POLL_INTERVAL = 0.2
T = TypeVar("T")


async def run_replica_in_foreground(data_dir: Path) -> None:
    """Run the replica until SIGTERM/SIGINT, printing its URL once it takes connections."""
    stop = stop_event()
    folder = data_dir / REPLICA_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with _the_only_one(folder):
        primary = await _unless_stopped(_wait_for_primary(data_dir / "pgdata"), stop)
        if primary is None:
            return
        user = postgres_user()
        prepare_folder(folder, user)
        standby = Standby(
            folder / "pgdata", socket_dir_for(folder, user), log_path=folder / "log", user=user
        )
        standby.stop_leftover()
        await _unless_stopped(_ensure_copy(primary, standby, user), stop)
        if stop.is_set():
            return
        url = f"postgresql://postgres:@/{DATABASE_NAME}?host={standby.socket_dir}"
        _write_atomically(folder / REPLICA_URL_FILE, url + "\n")
        standby.start()
        try:
            await _serve(standby, url, stop)
        finally:
            standby.stop()


async def _serve(standby: Standby, url: str, stop: asyncio.Event) -> None:
    while not standby.accepting():
        if not standby.running:
            raise StandbyError(f"the replica's PostgreSQL exited: {standby.log_tail()}")
        if await _stopped_within(stop, 0.05):
            return
    print(url, flush=True)
    while not await _stopped_within(stop, POLL_INTERVAL):
        if not standby.running:
            raise StandbyError(f"the replica's PostgreSQL exited: {standby.log_tail()}")


async def _wait_for_primary(pgdata: Path) -> PostmasterFile:
    """The embedded primary once it takes connections (`db`, `web` or any command starts it)."""
    said = False
    while True:
        found = PostmasterFile.read(pgdata)
        if found is not None and found.status == "ready" and found.alive():
            try:
                conn = await asyncpg.connect(_primary_url(found), timeout=5)
            except CONNECT_ERRORS:
                pass
            else:
                await conn.close()
                return found
        if not said:
            print(f"waiting for the embedded database in {pgdata} to start", file=sys.stderr)
            said = True
        await asyncio.sleep(POLL_INTERVAL)


def _primary_url(primary: PostmasterFile) -> str:
    return f"postgresql://postgres@/postgres?host={primary.socket_dir}&port={primary.port}"


async def _ensure_copy(primary: PostmasterFile, standby: Standby, user: str | None) -> None:
    """Reuse the copy in standby.pgdata if its slot still holds its WAL, else make one."""
    conn = await asyncpg.connect(_primary_url(primary), timeout=5)
    try:
        if await conn.fetchval("SHOW max_slot_wal_keep_size") == "-1":
            await conn.execute(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{WAL_KEPT}'")
            await conn.execute("SELECT pg_reload_conf()")
        slot = await _slot(conn)
        if standby.pgdata.exists():
            if slot is not None and slot["wal_status"] != "lost":
                return
            print(
                "making the replica again: the primary no longer keeps the WAL it needs",
                file=sys.stderr,
            )
            shutil.rmtree(standby.pgdata)
        if slot is not None:
            await conn.execute("SELECT pg_drop_replication_slot($1)", SLOT)
    finally:
        await conn.close()
    conninfo = f"host={primary.socket_dir} port={primary.port} user=postgres"
    await base_backup(conninfo, standby.pgdata, slot=SLOT, user=user)


async def _slot(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The replica's slot; one still in use by a replica that just stopped is waited for."""
    for _ in range(50):
        slot = await conn.fetchrow(
            "SELECT active, wal_status FROM pg_replication_slots WHERE slot_name = $1", SLOT
        )
        if slot is None or not slot["active"]:
            return slot
        await asyncio.sleep(0.1)
    raise StandbyError(f"replication slot {SLOT} is in use by another replica of this database")


@contextmanager
def _the_only_one(folder: Path) -> Iterator[None]:
    with (folder / "lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StandbyError(f"another `db --replica` is running from {folder}") from None
        yield


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """The result of `work`, or None if a stop signal came first (`work` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()  # and wait for it to clean up after itself
            with suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
