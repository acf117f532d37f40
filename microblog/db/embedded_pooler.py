"""`microblog db --pgbouncer`: PgBouncer in transaction mode before the embedded database.

It runs in the foreground, in MICROBLOG_DATA_DIR/pgbouncer: the configuration written at each
start, PgBouncer's log, and its Unix socket (no TCP port to collide with another). Once it
takes connections it writes `env` there, the settings a process needs to go through it, and
prints the pooled URL:

    DATABASE_URL=<through PgBouncer>  DATABASE_DIRECT_URL=<the embedded server itself>
    POOLER_PREPARED_STATEMENTS=on with PgBouncer 1.21 or later (it then keeps prepared
    statements, max_prepared_statements), else off

Like the embedded server it asks no password and serves this machine only. PgBouncer refuses
to run as root: started by root, it runs as pgserver's system user, as PostgreSQL does.

Processes that go through PgBouncer do not join the embedded server themselves, so this one
joins it for them, and on SIGTERM it keeps PgBouncer, and so the server, up until the last of
their connections has closed (within STOP_GRACE): a Procfile runner stops every process at
once, and the instances still draining their requests need both.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import asyncpg
import psutil

from microblog.db.beside_embedded import (
    POLL_INTERVAL,
    primary_url,
    stopped_within,
    the_only_one,
    unless_stopped,
    wait_for_primary,
    write_atomically,
)
from microblog.db.embedded import DATABASE_NAME, open_embedded_database
from microblog.db.outage import CONNECT_ERRORS
from microblog.db.standby import (
    PostmasterFile,
    StandbyError,
    postgres_user,
    prepare_folder,
    socket_dir_for,
)
from microblog.signals import stop_event

POOLER_FOLDER = "pgbouncer"
ENV_FILE = "env"
# Names the socket file only (.s.PGSQL.6432): PgBouncer listens on no TCP port here.
PORT = 6432
# Server connections PgBouncer keeps to the embedded database, whatever the number of processes.
POOL_SIZE = 10
MAX_CLIENTS = 500
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Longer than an instance's drain (SHUTDOWN_TIMEOUT's default, 20 s) and its last goodbyes.
STOP_GRACE = 30.0
# A connected socket in /proc/net/unix (an accepted one bears the listener's path).
CONNECTED = "03"


# The first PgBouncer to prepare a client's statements again on whichever server connection
# runs them (max_prepared_statements), so that pooled clients may keep a statement cache.
PREPARES_FROM = (1, 21)
PREPARED_STATEMENTS = 200  # per server connection: more than the app's statement cache holds


def pgbouncer_version(program: str) -> str:
    """The first line of what `program --version` says: "PgBouncer 1.24.1"."""
    answer = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
    return answer.stdout.split("\n", 1)[0]


def version_prepares(version: str) -> bool:
    """Whether the PgBouncer that answered --version so ("PgBouncer 1.24.1" first) is
    PREPARES_FROM or later."""
    found = re.match(r"PgBouncer (\d+)\.(\d+)", version)
    return found is not None and tuple(map(int, found.groups())) >= PREPARES_FROM


def pgbouncer_config(
    primary: PostmasterFile, socket_dir: Path, folder: Path, *, prepares: bool
) -> str:
    return (
        # Every database of the embedded server, under its own name.
        "[databases]\n"
        f"* = host={primary.socket_dir} port={primary.port} user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr =\nunix_socket_dir = {socket_dir}\nlisten_port = {PORT}\n"
        # Anyone who can reach the socket is let in, as the embedded server lets them in.
        "auth_type = any\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {POOL_SIZE}\nmax_client_conn = {MAX_CLIENTS}\n"
        f"logfile = {folder / 'log'}\npidfile = {folder / 'pid'}\n"
        + (f"max_prepared_statements = {PREPARED_STATEMENTS}\n" if prepares else "")
    )


async def run_pgbouncer_in_foreground(data_dir: Path) -> None:
    """Run PgBouncer until SIGTERM/SIGINT and its clients have gone, printing its URL once it
    takes connections."""
    program = shutil.which("pgbouncer")
    if program is None:
        raise StandbyError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    stop = stop_event()
    folder = data_dir / POOLER_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with the_only_one(folder, "db --pgbouncer"):
        # Processes wait for this file to go through PgBouncer: never one from an earlier run.
        (folder / ENV_FILE).unlink(missing_ok=True)
        _stop_leftover(folder)
        # Joined, the server stays up as long as this process does (db/embedded.py).
        if await unless_stopped(open_embedded_database(data_dir), stop) is None:
            return
        primary = await wait_for_primary(data_dir / "pgdata")
        user = postgres_user()
        prepare_folder(folder, user)
        socket_dir = socket_dir_for(folder, user, PORT)
        config = folder / "pgbouncer.ini"
        prepares = version_prepares(pgbouncer_version(program))
        config.write_text(pgbouncer_config(primary, socket_dir, folder, prepares=prepares))
        if user is not None:
            shutil.chown(config, user)
        pooled = f"postgresql://microblog@/{DATABASE_NAME}?host={socket_dir}&port={PORT}"
        process = _start(program, config, user)
        try:
            settings = {
                "DATABASE_URL": pooled,
                "DATABASE_DIRECT_URL": primary_url(primary, DATABASE_NAME),
                "POOLER_PREPARED_STATEMENTS": "on" if prepares else "off",
            }
            await _serve(process, settings, folder, stop)
        finally:
            (folder / ENV_FILE).unlink(missing_ok=True)
            await _clients_gone(socket_dir / f".s.PGSQL.{PORT}", process)
            _stop(process)


async def _serve(
    process: subprocess.Popen, settings: dict[str, str], folder: Path, stop: asyncio.Event
) -> None:
    pooled = settings["DATABASE_URL"]
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    while not await _takes_connections(pooled):
        _check_running(process, folder)
        if asyncio.get_running_loop().time() > deadline:
            raise StandbyError(
                f"pgbouncer took no connection in {READY_TIMEOUT:g}s: {_log(folder)}"
            )
        if await stopped_within(stop, POLL_INTERVAL):
            return
    write_atomically(
        folder / ENV_FILE,
        "".join(f"export {name}={shlex.quote(url)}\n" for name, url in settings.items()),
    )
    print(pooled, flush=True)
    while not await stopped_within(stop, POLL_INTERVAL):
        _check_running(process, folder)


async def _takes_connections(url: str) -> bool:
    """Through PgBouncer to the server and back: one statement answered."""
    try:
        conn = await asyncpg.connect(url, timeout=5, statement_cache_size=0)
    except CONNECT_ERRORS:
        return False
    try:
        return await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


def _start(program: str, config: Path, user: str | None) -> subprocess.Popen:
    return subprocess.Popen(
        [program, str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=user,
        start_new_session=True,  # a Ctrl-C meant for us does not reach it unasked
    )


async def _clients_gone(socket: Path, process: subprocess.Popen) -> None:
    """Once no client is connected to PgBouncer's socket (or after STOP_GRACE)."""
    deadline = asyncio.get_running_loop().time() + STOP_GRACE
    while process.poll() is None and _connected(socket) > 0:
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(POLL_INTERVAL)


def _connected(socket: Path) -> int:
    """Connections accepted on the Unix socket at `socket`, as the kernel lists them."""
    path = str(socket)
    with open("/proc/net/unix") as table:
        next(table)  # the header
        return sum(
            1
            for line in table
            if (fields := line.split()) and fields[-1] == path and fields[5] == CONNECTED
        )


def _check_running(process: subprocess.Popen, folder: Path) -> None:
    if process.poll() is not None:
        raise StandbyError(f"pgbouncer exited with {process.returncode}: {_log(folder)}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM: PgBouncer closes every connection and exits at once."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stop_leftover(folder: Path) -> None:
    """A PgBouncer of this folder that outlived the `db --pgbouncer` that started it (killed
    with SIGKILL): its pid file names it, and its command line is this folder's."""
    try:
        leftover = psutil.Process(int((folder / "pid").read_text().strip()))
        if str(folder / "pgbouncer.ini") not in leftover.cmdline():
            return  # the number went to another process since
        leftover.terminate()
        leftover.wait(STOP_TIMEOUT)
    except (OSError, ValueError, psutil.Error):  # no pid file, or that process is gone
        return


def _log(folder: Path, lines: int = 5) -> str:
    try:
        text = (folder / "log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"
