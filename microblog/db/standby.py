"""A streaming replica of a PostgreSQL server: copied with pg_basebackup, run as a child process.

The mechanics behind `db --replica`, which the tests use for replicas of their own server too.
A replica runs the primary's major version: pgserver ships PostgreSQL 16, the embedded server's
(Debian's PostgreSQL 15 binaries cannot replicate it). As root, PostgreSQL runs as pgserver's
system user, which must own the replica's folder and reach everything above it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from microblog.db.embedded import import_pgserver

# The user pgserver runs PostgreSQL as when started by root.
PGSERVER_USER = "pgserver"
# Files pgserver keeps in its data folder, which pg_basebackup copies but a replica must not
# have: the socket's lock (a replica holding it refuses to start), its process list, its log.
NOT_COPIED = (".s.PGSQL.*.lock", ".handle_pids.json", "log")
STOP_TIMEOUT = 30.0
# Where a Unix socket's path must fit (sun_path), terminating zero included.
SOCKET_PATH_LIMIT = 108


class StandbyError(RuntimeError):
    """A replica, or PgBouncer beside the embedded database, could not be made or run; the
    message says why."""


def pgserver_bin() -> Path:
    """PostgreSQL 16's programs, as the pgserver package ships them."""
    return Path(import_pgserver().__file__).parent / "pginstall" / "bin"


def postgres_user() -> str | None:
    """The system user to run PostgreSQL as: pgserver's own when we are root, else us."""
    if os.geteuid() != 0:
        return None
    import_pgserver().utils.ensure_user_exists(PGSERVER_USER)
    return PGSERVER_USER


def prepare_folder(folder: Path, user: str | None) -> None:
    """`folder` exists, and `user` can reach it and write in it."""
    folder.mkdir(parents=True, exist_ok=True)
    if user is not None:
        import_pgserver().utils.ensure_prefix_permissions(folder)
        folder.chmod(0o755)
        shutil.chown(folder, user)


def socket_dir_for(folder: Path, user: str | None, port: int = 5432) -> Path:
    """`folder` itself, unless the socket's path would be too long: then a short one in /tmp."""
    if len(os.fsencode(folder / f".s.PGSQL.{port}")) < SOCKET_PATH_LIMIT:
        return folder
    digest = hashlib.sha256(os.fsencode(folder.resolve())).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"microblog-replica-{digest}"
    prepare_folder(short, user)
    return short


async def base_backup(
    conninfo: str, pgdata: Path, *, slot: str | None = None, bin_dir: Path | None = None,
    user: str | None = None,
) -> None:  # fmt: skip
    """Copy the server at `conninfo` into `pgdata`, set up to stream from it.

    The copy is made beside `pgdata` and renamed at the end, so one cut short (an error, a stop
    signal) leaves nothing that looks like a replica. With `slot`, it creates that replication
    slot, so the primary keeps the WAL the replica has yet to receive.
    """
    partial = pgdata.with_name(f"{pgdata.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    prepare_folder(pgdata.parent, user)
    command = [
        str((bin_dir or pgserver_bin()) / "pg_basebackup"), "--pgdata", str(partial),
        "--dbname", conninfo, "--wal-method=stream", "--write-recovery-conf",
        "--checkpoint=fast", "--no-password",
    ]  # fmt: skip
    if slot:
        command += ["--create-slot", "--slot", slot]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        user=user,
    )
    try:
        _, errors = await process.communicate()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if process.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise StandbyError(f"pg_basebackup failed: {_first_error(errors.decode(errors='replace'))}")
    for pattern in NOT_COPIED:
        for path in partial.glob(pattern):
            path.unlink()
    partial.rename(pgdata)


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return (errors or lines or ["no message"])[0]


@dataclass(frozen=True)
class PostmasterFile:
    """What a running server says about itself in its data folder's postmaster.pid."""

    pid: int
    port: int
    socket_dir: Path
    status: str  # starting, ready, standby, stopping

    @classmethod
    def read(cls, pgdata: Path) -> PostmasterFile | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            return cls(int(lines[0]), int(lines[3]), Path(lines[4]), lines[7].strip())
        except (OSError, IndexError, ValueError):  # absent, or being written
            return None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Standby:
    """The PostgreSQL of a replica in `pgdata`, on a Unix socket in `socket_dir` only."""

    def __init__(
        self, pgdata: Path, socket_dir: Path, *, log_path: Path, bin_dir: Path | None = None,
        user: str | None = None, port: int = 5432,
    ) -> None:  # fmt: skip
        self.pgdata, self.socket_dir, self.log_path = pgdata, socket_dir, log_path
        self.bin_dir, self.user, self.port = bin_dir, user, port
        self._process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        postgres = str((self.bin_dir or pgserver_bin()) / "postgres")
        command = [postgres, "-D", str(self.pgdata), "-k", str(self.socket_dir), "-h", ""]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                user=self.user,
                # Its own process group: a Ctrl-C meant for us does not reach it unasked, and
                # kill() takes down every process of the server at once, as a crash would.
                start_new_session=True,
            )

    def accepting(self) -> bool:
        """Started by us and open for (read-only) connections. "standby" in the pid file means
        up but refusing connections until replay reaches a consistent state; "ready" is open."""
        found = PostmasterFile.read(self.pgdata)
        return (
            self.running
            and found is not None
            and found.pid == self._process.pid
            and found.status == "ready"
        )

    def wait_accepting(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.accepting():
            if not self.running:
                raise StandbyError(f"the replica's PostgreSQL exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise StandbyError(f"the replica did not open within {timeout}s: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, replay stops where it is."""
        if not self.running:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL to every process of the server, as a crash or the OOM killer would."""
        if self.running:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop_leftover(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop a server left running in pgdata by an earlier run that was itself killed."""
        found = PostmasterFile.read(self.pgdata)
        if found is None or not found.alive() or (self.running and found.pid == self._process.pid):
            return
        os.kill(found.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while found.alive():
            if time.monotonic() > deadline:
                raise StandbyError(f"PostgreSQL (pid {found.pid}) in {self.pgdata} did not stop")
            time.sleep(0.05)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"
