"""Real servers beside the tests' PostgreSQL: a streaming replica of it, and PgBouncer before it.

The fixtures in tests/conftest.py start them once per session; these classes start, stop,
pause and inspect them. Both run as pgserver's system user when the tests run as root, as the
embedded server does: that user owns the server's socket folder, and neither program runs as
root.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg

from microblog.db.lsn import Lsn
from microblog.db.standby import (
    Standby,
    StandbyError,
    base_backup,
    pgserver_bin,
    postgres_user,
    prepare_folder,
)

DEBIAN_BIN = Path("/usr/lib/postgresql")
READY_TIMEOUT = 30.0


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerAddress:
    """Where a PostgreSQL URL leads and as whom: a host or a socket folder, a port, a login."""

    host: str
    port: int
    user: str
    password: str | None

    @classmethod
    def of(cls, url: str) -> ServerAddress:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["localhost"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
        return cls(host, port, parts.username or "postgres", parts.password or None)

    def url(self, database: str) -> str:
        login = quote(self.user, safe="")
        if self.password:
            login += ":" + quote(self.password, safe="")
        if self.host.startswith("/"):
            return f"postgresql://{login}@/{database}?host={self.host}&port={self.port}"
        return f"postgresql://{login}@{self.host}:{self.port}/{database}"


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def _fetchval(url: str, sql: str):
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _bin_dir_for(server_url: str) -> Path:
    """The programs of the server's major version: pgserver's 16, or Debian's."""
    major = int(asyncio.run(_fetchval(server_url, "SHOW server_version_num"))) // 10000
    if major == 16:
        return pgserver_bin()
    debian = DEBIAN_BIN / str(major) / "bin"
    if not (debian / "pg_basebackup").exists():
        raise StandbyError(f"no PostgreSQL {major} programs here to run a replica with")
    return debian


class ReplicaServer:
    """A streaming replica of the tests' server, on a Unix socket in a folder of its own."""

    def __init__(self, primary_url: str) -> None:
        self.primary_url = primary_url
        self.folder = Path(tempfile.mkdtemp(prefix="microblog-replica-"))
        user = postgres_user()
        prepare_folder(self.folder, user)
        bin_dir = _bin_dir_for(primary_url)
        asyncio.run(base_backup(primary_url, self.folder / "pgdata", bin_dir=bin_dir, user=user))
        self.standby = Standby(
            self.folder / "pgdata", self.folder, log_path=self.folder / "log",
            bin_dir=bin_dir, user=user,
        )  # fmt: skip
        address = ServerAddress.of(primary_url)
        self.address = ServerAddress(str(self.folder), 5432, address.user, address.password)

    def url(self, database_url: str) -> str:
        """The URL of the same database as `database_url` (on the primary), on the replica."""
        return self.address.url(database_of(database_url))

    def start(self) -> None:
        self.standby.start()
        self.standby.wait_accepting(READY_TIMEOUT)

    async def kill(self) -> None:
        """SIGKILL to every process of the replica, just after a restartpoint: its restart then
        replays from there, seconds of WAL, rather than all the suite has written since the last
        one (the databases it made and dropped), which can take longer than READY_TIMEOUT."""
        await _fetchval(self.address.url("postgres"), "CHECKPOINT")
        self.standby.kill()

    async def pause_replay(self) -> None:
        await _fetchval(self.address.url("postgres"), "SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await _fetchval(self.address.url("postgres"), "SELECT pg_wal_replay_resume()")

    async def replayed(self) -> Lsn:
        return Lsn(await _fetchval(self.address.url("postgres"), "SELECT pg_last_wal_replay_lsn()"))

    async def primary_position(self) -> Lsn:
        # The insert position, as read-your-writes records it: past every record written so far,
        # including those still in the primary's WAL buffers.
        insert = Lsn(await _fetchval(self.primary_url, "SELECT pg_current_wal_insert_lsn()"))
        return insert.as_replayed()

    async def wait_replayed(self, position: Lsn | None = None, within: float = 10.0) -> Lsn:
        """Until the replica has replayed `position` (default: the primary's position now)."""
        target = position if position is not None else await self.primary_position()
        deadline = time.monotonic() + within
        while (replayed := await self.replayed()) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica replayed {replayed}, not {target}, in {within}s")
            await asyncio.sleep(0.02)
        return replayed

    def close(self) -> None:
        self.standby.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PgBouncer:
    """PgBouncer 1.18 in transaction mode on a free port, in front of the tests' server.

    Clients may log in with any name (`auth_type = any`); PgBouncer logs in to the server with
    the server URL's user and password.
    """

    def __init__(self, server_url: str, *, pool_size: int = 4) -> None:
        self.server = ServerAddress.of(server_url)
        self.pool_size = pool_size
        self.folder = Path(tempfile.mkdtemp(prefix="microblog-pgbouncer-"))
        self.user = postgres_user()
        prepare_folder(self.folder, self.user)
        for _ in range(3):  # another program may take the free port before PgBouncer does
            self.port = free_port()
            self.process = self._start()
            if self._listening():
                return
        raise RuntimeError(f"pgbouncer did not start: {self.log_tail()}")

    def _start(self) -> subprocess.Popen:
        login = f"user={self.server.user}" + (
            f" password='{self.server.password}'" if self.server.password else ""
        )
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={self.server.host} port={self.server.port} {login}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "auth_type = any\npool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n"
        )
        config.chmod(0o600)
        if self.user:
            shutil.chown(config, self.user)
        return subprocess.Popen(
            ["pgbouncer", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.user,
        )

    def _listening(self) -> bool:
        """PgBouncer says it listens on its port (a connection could reach someone else)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while f"listening on 127.0.0.1:{self.port}" not in self.log_tail(lines=50):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                return False
            time.sleep(0.05)
        return True

    def url(self, database_url: str) -> str:
        """The URL of the same database as `database_url`, through PgBouncer."""
        assert self.process.poll() is None, f"pgbouncer has exited: {self.log_tail()}"
        return f"postgresql://microblog@127.0.0.1:{self.port}/{database_of(database_url)}"

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """PgBouncer stopped in its tracks (SIGSTOP): whatever goes through it waits."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def log_tail(self, lines: int = 10) -> str:
        path = self.folder / "pgbouncer.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def close(self) -> None:
        """Stop PgBouncer; one that died on its own fails the session, its log kept."""
        died = self.process.poll()
        self.process.send_signal(signal.SIGCONT)  # a frozen process ignores SIGTERM until then
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if died is not None:
            raise RuntimeError(f"pgbouncer exited with {died} during the tests: {self.log_tail()}")
        shutil.rmtree(self.folder, ignore_errors=True)


async def server_connections(server_url: str, database: str) -> int:
    """How many sessions the server has open on `database` (from the server's own view)."""
    conn = await asyncpg.connect(server_url, timeout=5)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
