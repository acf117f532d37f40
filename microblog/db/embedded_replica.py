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
import shutil
import sys
from pathlib import Path

import asyncpg

from microblog.db.beside_embedded import (
    POLL_INTERVAL,
    primary_url,
    stopped_within,
    the_only_one,
    unless_stopped,
    wait_for_primary,
    write_atomically,
)
from microblog.db.embedded import DATABASE_NAME, REPLICA_FOLDER, REPLICA_URL_FILE
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


async def run_replica_in_foreground(data_dir: Path) -> None:
    """Run the replica until SIGTERM/SIGINT, printing its URL once it takes connections."""
    stop = stop_event()
    folder = data_dir / REPLICA_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with the_only_one(folder, "db --replica"):
        primary = await unless_stopped(wait_for_primary(data_dir / "pgdata"), stop)
        if primary is None:
            return
        user = postgres_user()
        prepare_folder(folder, user)
        standby = Standby(
            folder / "pgdata", socket_dir_for(folder, user), log_path=folder / "log", user=user
        )
        standby.stop_leftover()
        await unless_stopped(_ensure_copy(primary, standby, user), stop)
        if stop.is_set():
            return
        url = f"postgresql://postgres:@/{DATABASE_NAME}?host={standby.socket_dir}"
        write_atomically(folder / REPLICA_URL_FILE, url + "\n")
        standby.start()
        try:
            await _serve(standby, url, stop)
        finally:
            standby.stop()


async def _serve(standby: Standby, url: str, stop: asyncio.Event) -> None:
    while not standby.accepting():
        if not standby.running:
            raise StandbyError(f"the replica's PostgreSQL exited: {standby.log_tail()}")
        if await stopped_within(stop, 0.05):
            return
    print(url, flush=True)
    while not await stopped_within(stop, POLL_INTERVAL):
        if not standby.running:
            raise StandbyError(f"the replica's PostgreSQL exited: {standby.log_tail()}")


async def _ensure_copy(primary: PostmasterFile, standby: Standby, user: str | None) -> None:
    """Reuse the copy in standby.pgdata if its slot still holds its WAL, else make one."""
    conn = await asyncpg.connect(primary_url(primary), timeout=5)
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
