"""Scale-out benchmark: timelines on a realistic data set, one instance to three behind nginx.

    .venv/bin/python bench/scale.py [--quick] [--database-url URL] [--write docs/benchmarks.md]

Seeds 10,000 users, 500,000 posts and 200,000 follows (`microblog seed`), then measures
requests/s and latency with wrk (Debian: apt-get install wrk nginx) for the logged-in home
timeline and the anonymous public timeline: one instance directly, and through the
repository's nginx.conf with 1, 2 and 3 instances. The same runs against bench/baseline_app.py
(a bare Quart + asyncpg + jinja2 page of 20 rows) give the baseline at each instance count.
CPU time of wrk, nginx, the instances and PostgreSQL is recorded for every run: on a small
machine they share the same cores, and that, more than the app, decides what scaling shows.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import procstat

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECTION = "## Scale-out"
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Sizes:
    users: int
    posts: int
    follows: int
    seconds: int
    connections: int
    # Every run is repeated this often, in turn with the others. This machine's speed drifts
    # by a fifth from one minute to the next, so ratios are taken within a round, between
    # runs made moments apart, and the median of the rounds' ratios is reported.
    rounds: int


FULL = Sizes(users=10_000, posts=500_000, follows=200_000, seconds=6, connections=32, rounds=5)
QUICK = Sizes(users=1_000, posts=20_000, follows=10_000, seconds=3, connections=16, rounds=1)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

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


def fresh_database(server_url: str, name: str) -> str:
    """An empty, migrated database of this name on the server; its URL."""
    import asyncio

    import asyncpg

    async def recreate() -> None:
        conn = await asyncpg.connect(with_database(server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    url = with_database(server_url, name)
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [PYTHON, "-m", "microblog", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    return url


def prepare(server_url: str, sizes: Sizes) -> str:
    """The benchmark's seeded database; its URL."""
    url = fresh_database(server_url, "scalebench")
    log(f"seeding {sizes.users} users, {sizes.posts} posts, {sizes.follows} follows ...")
    subprocess.run(
        [PYTHON, "-m", "microblog", "seed", "--users", str(sizes.users), "--posts",
         str(sizes.posts), "--follows", str(sizes.follows), "--progress"],
        env={**os.environ, "DATABASE_URL": url}, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return url


def start_servers(started: list, kind: str, count: int, database_url: str) -> list[Server]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RATE_LIMITS": "off",  # one load generator from one address is not an attack
        "LOG_LEVEL": "warning",  # the baseline logs nothing per request either
        "MICROBLOG_DATA_DIR": str(Path(tempfile.mkdtemp(prefix="scalebench-"))),
    }
    servers = []
    for _ in range(count):
        port = free_port()
        command = (
            [PYTHON, "-m", "microblog", "web", "--port", str(port)]
            if kind == "microblog"
            else [PYTHON, str(ROOT / "bench" / "baseline_app.py"), "--port", str(port)]
        )
        popen = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
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
    import asyncio

    import asyncpg

    from microblog.seed import DEMO_PASSWORD

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
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = client.post(
            "/login",
            data={"username": user["username"], "password": DEMO_PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303, response.text
        return f"microblog_session={client.cookies['microblog_session']}", user["following_count"]


@dataclass(frozen=True)
class Run:
    round: int
    page: str
    target: str
    instances: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: dict[str, float]  # cores used on average, by part


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(url: str, sizes: Sizes, cookie: str | None, parts: dict[str, list[int]]) -> dict:
    """One wrk run against url; parts name the processes whose CPU time is recorded (each
    with its children, so nginx's workers and PostgreSQL's backends count)."""
    command = [shutil.which("wrk") or "wrk", "-t2", f"-c{sizes.connections}", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    subprocess.run([*command, "-d2s", url], capture_output=True, check=True)  # warm-up
    before = {name: sum(map(procstat.server_cpu_seconds, pids)) for name, pids in parts.items()}
    started = time.monotonic()
    popen = subprocess.Popen(
        [*command, f"-d{sizes.seconds}s", url], stdout=subprocess.PIPE, text=True
    )
    output = popen.stdout.read()
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    cpu = {
        name: (sum(map(procstat.server_cpu_seconds, pids)) - before[name]) / elapsed
        for name, pids in parts.items()
    }
    cpu["wrk"] = (usage.ru_utime + usage.ru_stime) / elapsed
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.+)", output)
    if socket_errors:
        log(f"  socket errors: {socket_errors.group(1)}")
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _milliseconds(re.search(r"\s50%\s+(\S+)", output).group(1)),
        "p99_ms": _milliseconds(re.search(r"\s99%\s+(\S+)", output).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
        "cpu": cpu,
    }


CONFIGURATIONS = (("direct", 1), ("nginx", 1), ("nginx", 2), ("nginx", 3))

READING = """How to read these numbers:

- Every process here shares the same cores: wrk, nginx, the instances and PostgreSQL. The CPU
  columns (cores used on average during the run) show where the time went; when they add up to
  about the number of cores, the machine, not the app, is the limit.
- One instance is one process with one event loop: it cannot use more than one core, and at
  full load it uses all of it. Its rate is then one second divided by the app CPU per request
  (last column), which is where the pages differ.
- This machine's speed drifts from one minute to the next, and the rates with it (the app CPU
  a request costs drifts as much): the rounds' range shows how far apart one ratio's rounds
  fell, and whole runs made the same day differ by as much. Read a median with its range.
- The baseline does the least a page can: one query for 20 rows and a tiny template. The home
  timeline does what a real page must: it checks the signed session against the user's row
  (kept in the process's memory while PostgreSQL's notifications say it is current, so a
  password change still logs other sessions out everywhere), runs the timeline query
  (which merges the newest posts of everyone followed), takes the 20 post cards from the
  process's memory (the shared cache, and then the templates, only for cards it has not seen),
  and sends a page several times larger (navigation, a compose form, a CSRF token, like and
  delete forms on every post), with security headers and a request id (the access log is off
  here, as the baseline logs nothing). The last column shows what that costs per request,
  and the rate falls by as much.
- The public timeline for anonymous visitors is cached whole (one version check, one lookup)
  and runs at about the baseline's rate.
- The instances run with `RATE_LIMITS=off`, as the baseline has no limits and all of wrk's
  requests come from one address. With limits on, every page also takes one statement on the
  cache's pool to check and count the visitor's global limit (about 0.28 ms of round trip on
  this machine; see "Cache and rate limits" below).
- Once the instances, PostgreSQL, nginx and wrk use every core between them (two or three
  instances here), home / baseline is the ratio of all the CPU a request costs, PostgreSQL's
  included, and the home timeline's query (the newest posts of everyone followed, with the
  viewer's likes and each post's mentions) costs PostgreSQL more than twice what the
  baseline's 20 rows cost. The ratio then falls below the one-instance ratio.
- A second instance can only use the cores the one-instance run left idle. The last column
  estimates the most it could add: the number of cores divided by the cores the one-instance
  run used (its CPU columns added up), as if every request kept costing what it cost there.
  With two instances, PostgreSQL, nginx and wrk on two cores, a request costs more app CPU
  than with one (compare the last column), so the ratios fall short of the estimate. The
  busier one instance keeps PostgreSQL, the lower the estimate. On a machine with more cores
  than one instance's run needs, instances add up to their own core each."""


def run_all(sizes: Sizes, database_url: str, postmaster: int | None, started: list,
            scratch: Path) -> tuple[list[Run], int]:  # fmt: skip
    apps = start_servers(started, "microblog", 3, database_url)
    baselines = start_servers(started, "baseline", 3, database_url)
    cookie, following = session_cookie(apps[0], database_url)
    pages = {
        "microblog": [("home (logged in)", "/", cookie), ("public (anonymous)", "/public", None)],
        "baseline": [("baseline: 20 rows", "/", None)],
    }
    runs = []
    for round_number in range(1, sizes.rounds + 1):
        for target, count in CONFIGURATIONS:
            for kind, servers in (("microblog", apps), ("baseline", baselines)):
                chosen = servers[:count]
                parts = {"app": [s.popen.pid for s in chosen]}
                if postmaster:
                    parts["postgres"] = [postmaster]
                front = nginx(chosen, scratch / "site") if target == "nginx" else _direct(chosen)
                with front as server:
                    if target == "nginx":
                        parts["nginx"] = [server.popen.pid]
                    for page, path, page_cookie in pages[kind]:
                        log(f"round {round_number}: {page}: {target}, {count} instance(s) ...")
                        result = measure(server.url + path, sizes, page_cookie, parts)
                        runs.append(Run(round_number, page, target, count, **result))
    return runs, following


def medians(runs: list[Run]) -> list[Run]:
    """For each page and configuration, the run with the median rate, in first-run order."""
    rounds: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        rounds.setdefault((run.page, run.target, run.instances), []).append(run)
    return [
        sorted(same, key=lambda r: r.requests_per_second)[len(same) // 2]
        for same in rounds.values()
    ]


@contextmanager
def _direct(servers: list[Server]) -> Iterator[Server]:
    yield servers[0]


def table(runs: list[Run]) -> str:
    lines = [
        "| page | path | instances | req/s | p50 ms | p99 ms | errors | CPU cores: wrk / nginx / "
        "app / postgres | app CPU per request (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        cpu = " / ".join(f"{r.cpu.get(k, 0):.2f}" for k in ("wrk", "nginx", "app", "postgres"))
        per_request = r.cpu.get("app", 0) / r.requests_per_second * 1000
        lines.append(
            f"| {r.page} | {r.target} | {r.instances} | {r.requests_per_second:,.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {cpu} | {per_request:.2f} |"
        )
    return "\n".join(lines)


def _run(runs: list[Run], page: str, target: str, instances: int) -> Run:
    return next(
        r for r in runs if r.page == page and r.target == target and r.instances == instances
    )


@dataclass(frozen=True)
class Ratio:
    median: float
    lowest: float
    highest: float

    def __str__(self) -> str:
        return f"{self.median:.2f} | {self.lowest:.2f}-{self.highest:.2f}"


def _ratio(runs: list[Run], over: tuple[str, str, int], under: tuple[str, str, int]) -> Ratio:
    """The ratio of two runs' rates within each round: its median and range over the rounds."""
    rounds = sorted({r.round for r in runs})
    within = [
        _run(same, *over).requests_per_second / _run(same, *under).requests_per_second
        for same in ([r for r in runs if r.round == n] for n in rounds)
    ]
    return Ratio(statistics.median(within), min(within), max(within))


def ratios(runs: list[Run]) -> str:
    """The ratios of all rounds' runs; the ceiling from the median one-instance runs."""
    shown = medians(runs)
    home, public, base = "home (logged in)", "public (anonymous)", "baseline: 20 rows"
    lines = [
        "| ratio | median | rounds' range | target | this machine's ceiling (estimate) |",
        "|---|---:|---:|---|---:|",
    ]
    for target, count in CONFIGURATIONS:
        value = _ratio(runs, (home, target, count), (base, target, count))
        lines.append(f"| home / baseline, {target} x{count} | {value} | >= 0.70 | |")
    for page in (home, public, base):
        # A second instance can only use the cores the one-instance run left idle.
        ceiling = (os.cpu_count() or 1) / sum(_run(shown, page, "nginx", 1).cpu.values())
        target = ">= 1.5" if page == home else ""
        value = _ratio(runs, (page, "nginx", 2), (page, "nginx", 1))
        lines.append(f"| {page}: nginx x2 / nginx x1 | {value} | {target} | {ceiling:.2f} |")
        value = _ratio(runs, (page, "nginx", 3), (page, "nginx", 1))
        lines.append(f"| {page}: nginx x3 / nginx x1 | {value} | | {ceiling:.2f} |")
    return "\n".join(lines)


def write_section(path: Path, text: str, section: str = SECTION) -> None:
    """Replace (or add) one benchmark's section of docs/benchmarks.md."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        current = pattern.sub(lambda _: text.rstrip() + "\n\n", current)
    else:
        current = current.rstrip() + "\n\n" + text.rstrip() + "\n"
    path.write_text(current)


def arguments(description: str) -> tuple[argparse.Namespace, Sizes]:
    """The options every benchmark on the seeded data set takes, and the sizes they choose."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--write", type=Path, help="record the results in this markdown file")
    args = parser.parse_args()
    return args, QUICK if args.quick else FULL


def main() -> int:
    args, sizes = arguments(__doc__.splitlines()[0])
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is needed: apt-get install {tool}")
    # The folder outlives the processes: PostgreSQL's data is in it.
    with tempfile.TemporaryDirectory(prefix="scalebench-") as tmp, processes() as started:
        scratch = Path(tmp)
        scratch.chmod(0o755)  # nginx workers (as nobody, under root) walk to static/
        server_url = args.database_url or embedded_database(started, scratch / "pg")
        postmaster = (
            None if args.database_url else procstat.postmaster_pid(str(scratch / "pg" / "pgdata"))
        )
        database_url = prepare(server_url, sizes)
        runs, following = run_all(sizes, database_url, postmaster, started, scratch)
    command = "python bench/scale.py" + (" --quick" if args.quick else "")
    text = "\n\n".join([
        SECTION,
        f"`{command}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}: "
        f"{sizes.users:,} users, {sizes.posts:,} posts, {sizes.follows:,} follows; "
        f"wrk -t2 -c{sizes.connections}, {sizes.seconds} s per run after a 2 s warm-up; "
        f"every run {sizes.rounds} times, all runs taking turns; the table shows each run's "
        "median round; each ratio is taken within each round, and the median and the range over "
        "the rounds are shown. "
        f"The home timeline is that of a demo account following {following} people.",
        table(medians(runs)),
        ratios(runs),
        READING,
    ])  # fmt: skip
    print(text)
    if args.write:
        write_section(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
