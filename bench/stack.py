"""The system a benchmark measures: PostgreSQL with the seeded data set, app instances (ours or
the baseline's), and the repository's nginx.conf in front of them; each process stopped at the
end, in the reverse order of its start."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from microblog.seed import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
READY_TIMEOUT = 120.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def require(*tools: str) -> None:
    for tool in tools:
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is needed: apt-get install {tool}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, popen: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise SystemExit(f"{popen.args} exited with {popen.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {READY_TIMEOUT}s")


@dataclass
class Server:
    popen: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        # Last started, first stopped, each before the next: the database goes last.
        for popen in reversed(started):
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                popen.kill()


def embedded_database(started: list, folder: Path) -> str:
    """`microblog db` in the foreground: its first line is the server's URL."""
    popen = subprocess.Popen(
        [PYTHON, "-m", "microblog", "db"],
        env={**os.environ, "MICROBLOG_DATA_DIR": str(folder)},
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(popen)
    return popen.stdout.readline().strip()


def with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{name}{sep}{query}"


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """A new database of this name on the server, replacing any of that name: empty, or a copy
    of `template`; its URL."""
    copying = f' TEMPLATE "{template}"' if template else ""

    async def recreate() -> None:
        conn = await asyncpg.connect(with_database(server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"{copying}')
        finally:
            await conn.close()

    asyncio.run(recreate())
    return with_database(server_url, name)


def fresh_database(server_url: str, name: str) -> str:
    """An empty, migrated database of this name on the server; its URL."""
    url = create_database(server_url, name)
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [PYTHON, "-m", "microblog", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    return url


def database_name(url: str) -> str:
    return url.partition("?")[0].rsplit("/", 1)[1]


def seed(database_url: str, *words: object, source: Path | None = None) -> None:
    """`microblog seed` with these options, its progress bar on stderr; from the checkout at
    `source` when given (bench/compare.py), else this one."""
    log(f"seeding {database_name(database_url)}: {' '.join(map(str, words))} ...")
    subprocess.run(
        # `python -m` imports the package from the working directory first.
        [PYTHON, "-m", "microblog", "seed", *map(str, words), "--progress"], cwd=source,
        env={**os.environ, "DATABASE_URL": database_url}, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def prepare(server_url: str, users: int, posts: int, follows: int) -> str:
    """The benchmark's seeded database; its URL."""
    url = fresh_database(server_url, "scalebench")
    seed(url, "--users", users, "--posts", posts, "--follows", follows)
    return url


def embedded_replica(started: list, folder: Path) -> str:
    """`microblog db --replica` of the embedded database in `folder`: its server's URL."""
    popen = subprocess.Popen(
        [PYTHON, "-m", "microblog", "db", "--replica"],
        env={**os.environ, "MICROBLOG_DATA_DIR": str(folder)},
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(popen)
    url = popen.stdout.readline().strip()
    if not url:
        raise SystemExit(f"`microblog db --replica` exited with {popen.wait()}")
    return url


def wait_for_replay(primary_url: str, replica_url: str) -> None:
    """Until the replica has replayed everything the primary has written so far."""

    async def wait() -> None:
        primary = await asyncpg.connect(primary_url)
        replica = await asyncpg.connect(replica_url)
        try:
            target = await primary.fetchval("SELECT pg_current_wal_lsn()")
            deadline = time.monotonic() + READY_TIMEOUT
            while await replica.fetchval("SELECT pg_last_wal_replay_lsn() < $1", target):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the replica did not replay {target} in {READY_TIMEOUT}s")
                await asyncio.sleep(0.1)
        finally:
            await primary.close()
            await replica.close()

    asyncio.run(wait())


def start_servers(
    started: list,
    kind: str,
    count: int,
    database_url: str,
    data_dir: Path,
    settings: dict[str, str] | None = None,
    source: Path | None = None,
) -> list[Server]:
    """Instances of one kind; they share the data folder, and so the key that signs sessions.
    `settings`: more environment variables for them; `source`: the checkout whose microblog
    they run (bench/compare.py), else this one."""
    env = {
        **os.environ,
        **(settings or {}),
        "DATABASE_URL": database_url,
        "RATE_LIMITS": "off",  # one load generator from one address is not an attack
        "LOG_LEVEL": "warning",  # the baseline logs nothing per request either
        "MICROBLOG_DATA_DIR": str(data_dir),
    }
    servers = []
    for _ in range(count):
        port = free_port()
        command = (
            [PYTHON, "-m", "microblog", "web", "--port", str(port)]
            if kind == "microblog"
            else [PYTHON, str(ROOT / "bench" / "baseline_app.py"), "--port", str(port)]
        )
        popen = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=source)
        started.append(popen)
        servers.append(Server(popen, port))
    for server in servers:
        wait_until_up(server.url + ("/up" if kind == "microblog" else "/"), server.popen)
    return servers


@contextmanager
def nginx(servers: list[Server], site: Path) -> Iterator[Server]:
    """The repository's nginx.conf with these servers as its upstream."""
    port = free_port()
    text = (ROOT / "nginx.conf").read_text()
    upstream = "\n".join(
        f"        server 127.0.0.1:{s.port} max_fails=3 fail_timeout=10s;" for s in servers
    )
    text = re.sub(r"(        server 127\.0\.0\.1:300\d [^\n]+\n)+", upstream + "\n", text)
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    shutil.rmtree(site, ignore_errors=True)
    prefix = site / "var" / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "temp").mkdir()
    (site / "static").symlink_to(ROOT / "static")
    config = site / "nginx.conf"
    config.write_text(text.replace("access_log logs/access.log combined;", "access_log off;"))
    popen = subprocess.Popen(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-p", f"{prefix}/", "-c", str(config),
         "-e", str(prefix / "logs/error.log"), "-g", "daemon off;"],
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", popen)
        yield Server(popen, port)
    finally:
        popen.send_signal(signal.SIGQUIT)
        popen.wait(10)


def session_cookie(server: Server, database_url: str) -> tuple[str, int]:
    """Log in as a demo account that follows an ordinary number of people."""

    async def pick() -> asyncpg.Record:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchrow(
                "SELECT username, following_count FROM users "
                "WHERE following_count BETWEEN 15 AND 30 ORDER BY id LIMIT 1"
            )
        finally:
            await conn.close()

    user = asyncio.run(pick())
    return log_in(server, user["username"]), user["following_count"]


def log_in(server: Server, username: str) -> str:
    """The Cookie header of a demo account's session (they share one password)."""
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = client.post(
            "/login",
            data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303, response.text
        return f"microblog_session={client.cookies['microblog_session']}"
