"""Read-replica and PgBouncer benchmark: where timeline reads go, and what the primary spends.

    .venv/bin/python bench/replica.py [--quick] [--write docs/benchmarks.md]

On the embedded PostgreSQL seeded as the scale benchmark seeds it, with a streaming replica made
by `microblog db --replica` and PgBouncer in transaction mode run by `microblog db --pgbouncer`:

1. Routing: picking where a read goes (`reading()` entered and left: the replica monitor's state
   read, the choice counted) beside a bare loop, in one process; and what reading the primary's
   WAL position after a commit costs, on the committing connection or on the one it just freed.
2. Replica: the logged-in home timeline and the anonymous public timeline under wrk, one
   instance without a replica and one with it; the public timeline also with the shared cache
   off, as every page that is not cached whole reads its timeline. The primary's CPU per
   request comes from /proc (its postmaster and backends); the statements each server ran
   from its own counters, pg_stat_database's xact_commit in the benchmark's database (each
   read outside a transaction commits as one; the monitors' probes count too).
3. PgBouncer: three instances of DB_POOL_SIZE 10 behind nginx, directly, through PgBouncer
   (pool of 10; the PgBouncer on PATH, with the instances' statement cache on where it keeps
   prepared statements, 1.21 and later), and directly with the statement cache off as through
   PgBouncer 1.18: requests/s and the server's peak connection count meanwhile, each setup
   three times, taking turns, and the median round shown.
   Each instance runs within a CPU budget of its
   own (`--budget`, as bench/scale.py gives them), as if it had a core of its own on a larger
   machine: on 2 cores, PgBouncer, PostgreSQL, nginx and wrk would otherwise take the cores
   the instances run on, and the comparison would be of who gets the machine, not of what a
   request costs. Without cgroups, the instances run unbudgeted and the head says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import cgroups
import httpx
import options
import procstat
import replica_micro
import report
import scale
import stack
from measure import Instance, measure
from replica_report import DIRECT, POOLED, UNCACHED, PoolerRun, ReplicaRun, markdown

from microblog.db.embedded_pooler import pgbouncer_version, version_prepares

DATABASE = "scalebench"
CONNECTIONS = 8  # wrk's, per instance measured
POOLER_ROUNDS = 3
PAGES = scale.PAGES["microblog"]
# Backends report their counts to pg_stat_database at most once a second while busy, and
# within ten seconds once idle: each count is read after that.
STATS_SETTLE = 11.0


def _background(started: list, command: list[str], data_dir: Path) -> str:
    """`microblog <command>` in the foreground of its own process; the URL it prints."""
    popen = subprocess.Popen(
        [stack.PYTHON, "-m", "microblog", *command],
        env={**os.environ, "MICROBLOG_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(popen)
    url = popen.stdout.readline().strip()
    if not url:
        raise SystemExit(f"microblog {' '.join(command)} exited with {popen.wait()}")
    return url


@dataclass(frozen=True)
class Servers:
    primary_url: str  # the benchmark's database on each
    replica_url: str
    primary_pid: int
    replica_pid: int

    @property
    def pids(self) -> tuple[int, int]:
        return self.primary_pid, self.replica_pid


async def _statements(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", DATABASE
        )
    finally:
        await conn.close()


def _fleet(started: list, count: int, database_url: str, scratch: Path, **env: str) -> list:
    """Instances with these settings besides DATABASE_URL. All of them share one data folder,
    and so the key that signs sessions: one log-in works on every one."""
    os.environ.update(env)
    try:
        return stack.start_servers(started, "microblog", count, database_url, scratch / "apps")
    finally:
        for name in env:
            os.environ.pop(name)


def _stop(servers: list[stack.Server]) -> None:
    """Before the next setup, so that the server's connections are only the next one's."""
    for server in servers:
        server.popen.terminate()
    for server in servers:
        server.popen.wait(30)


def _replica_in_use(server: stack.Server) -> None:
    deadline = time.monotonic() + 30
    while ": in use, " not in (up := httpx.get(server.url + "/up").text):
        if time.monotonic() > deadline:
            raise SystemExit(f"the replica is not in use: {up}")
        time.sleep(0.1)


# The pages of the replica runs, and whether the shared cache is on. The anonymous public page
# is cached whole in the shared cache, whose tables are UNLOGGED and so exist on the primary
# only: with the cache, that page makes no timeline read at all. Without it, every request
# reads its timeline, as a page that is not cached does.
REPLICA_PAGES = [
    *((page, path, logged_in, True) for page, path, logged_in in scale.PAGES["microblog"]),
    ("public (anonymous), shared cache off", "/public", False, False),
]


def replica_runs(servers: Servers, sizes: options.Sizes, started: list, scratch: Path) -> list:
    def instance(with_replica: bool, cached: bool) -> stack.Server:
        env = {"REPLICA_DATABASE_URL": servers.replica_url} if with_replica else {}
        env |= {} if cached else {"CACHE": "off"}
        return _fleet(started, 1, servers.primary_url, scratch, **env)[0]

    fleets = {(r, c): instance(r, c) for r in (False, True) for c in (True, False)}
    cookie, _ = stack.session_cookie(fleets[False, True], servers.primary_url)
    for cached in (True, False):
        _replica_in_use(fleets[True, cached])
    runs = []
    for page, path, logged_in, cached in REPLICA_PAGES:
        for with_replica in (False, True):
            server = fleets[with_replica, cached]
            stack.log(f"{page}, {'with' if with_replica else 'without'} a replica ...")
            time.sleep(STATS_SETTLE)
            before = [
                asyncio.run(_statements(u)) for u in (servers.primary_url, servers.replica_url)
            ]
            cpu_before = [procstat.server_cpu_seconds(p) for p in servers.pids]
            measured = measure(
                server.url + path, CONNECTIONS, sizes.seconds, cookie if logged_in else None,
                [Instance(server.popen.pid)], {}, budget=None,
            )  # fmt: skip
            cpu = [
                procstat.server_cpu_seconds(p) - b
                for p, b in zip(servers.pids, cpu_before, strict=True)
            ]
            time.sleep(STATS_SETTLE)
            after = [
                asyncio.run(_statements(u)) for u in (servers.primary_url, servers.replica_url)
            ]
            requests = max(measured.report.requests, 1)
            if with_replica:
                stack.log(httpx.get(server.url + "/up").text.strip())
            runs.append(
                ReplicaRun(
                    page, with_replica, measured,
                    primary_statements=after[0] - before[0],
                    replica_statements=after[1] - before[1],
                    primary_cpu_ms=cpu[0] * 1000 / requests,
                    replica_cpu_ms=cpu[1] * 1000 / requests,
                )
            )  # fmt: skip
    for server in fleets.values():
        _stop([server])
    return runs


# The listeners connect to the server directly, each named "microblog ... listener"; every
# other connection of the database is a pooled one (PgBouncer's, when it is in between).
PEAK_CONNECTIONS = """
    SELECT count(*) FILTER (WHERE application_name NOT LIKE 'microblog % listener') AS pooled,
           count(*) FILTER (WHERE application_name LIKE 'microblog % listener') AS listening
    FROM pg_stat_activity
    WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


class PeakConnections:
    """The most connections the server held in the benchmark's database while it ran."""

    def __init__(self, url: str) -> None:
        self.pooled = self.listening = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch(url)))

    async def _watch(self, url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            while not self._stop.is_set():
                row = await conn.fetchrow(PEAK_CONNECTIONS, DATABASE)
                self.pooled = max(self.pooled, row["pooled"])
                self.listening = max(self.listening, row["listening"])
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def __enter__(self) -> PeakConnections:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Pooler:
    """The PgBouncer on PATH, which `db --pgbouncer` runs."""

    version: str
    prepares: bool

    @classmethod
    def on_path(cls) -> Pooler:
        version = pgbouncer_version(shutil.which("pgbouncer"))
        return cls(version, version_prepares(version))

    @property
    def description(self) -> str:
        if self.prepares:
            return (
                f"{self.version}: it keeps prepared statements (max_prepared_statements), so "
                "the instances keep their statement cache through it (POOLER_PREPARED_STATEMENTS)"
            )
        return (
            f"{self.version}: it keeps no prepared statements across its server connections "
            "(1.21 and later do), so the instances' statement cache is off through it"
        )


def pooler_runs(
    primary_url: str,
    pooled_url: str,
    sizes: options.Sizes,
    started: list,
    scratch: Path,
    budget: tuple[cgroups.Budgets, float] | None,
    prepares: bool,
    rounds: int,
) -> list[PoolerRun]:
    """Each setup's runs, made `rounds` times taking turns (one run of a setup says little on
    a machine of 2 cores); for each page the median round."""
    # The same server under another spelling of its URL: the app then keeps no session state,
    # the statement cache off included, as through PgBouncer, but talks to the server directly.
    spelled_otherwise = primary_url.replace("?host=", f"?port={_port(primary_url)}&host=")
    # PgBouncer's last: its idle server connections stay open after its run.
    setups = {
        DIRECT: {},
        UNCACHED: {"DATABASE_DIRECT_URL": spelled_otherwise},
        POOLED: {
            "DATABASE_URL": pooled_url,
            "DATABASE_DIRECT_URL": primary_url,
            "POOLER_PREPARED_STATEMENTS": "on" if prepares else "off",
        },
    }
    runs = []
    for turn, (setup, given) in enumerate(list(setups.items()) * rounds):
        env = dict(given)
        url = env.pop("DATABASE_URL", primary_url)
        number = turn // len(setups) + 1
        stack.log(f"round {number} of {rounds}: {setup} ...")
        servers = _fleet(started, options.INSTANCES, url, scratch, **env)
        made, cores = budget if budget else (None, None)
        # A group of its own each round: the last round's are still there, emptied.
        group = f"{setup.replace(' ', '-').replace(',', '')}-{number}"
        instances = scale.fleet(servers, group, made)
        for instance in instances:
            if instance.group:
                instance.group.limit(cores)
        cookie, _ = stack.session_cookie(servers[0], primary_url)
        for page, path, logged_in in PAGES:
            stack.log(f"{page}, {setup}, {options.INSTANCES} instances ...")
            with (
                stack.nginx(servers, scratch / "site") as front,
                PeakConnections(primary_url) as peak,
            ):
                measured = measure(
                    front.url + path, CONNECTIONS * len(servers), sizes.seconds,
                    cookie if logged_in else None, instances, {}, budget=cores,
                )  # fmt: skip
            runs.append(PoolerRun(setup, page, measured, peak.pooled, peak.listening))
        _stop(servers)
    return [_median_round(runs, setup, page) for setup in setups for page, *_ in PAGES]


def _median_round(runs: list[PoolerRun], setup: str, page: str) -> PoolerRun:
    """The round with the median rate of a setup's page, with the peak connections of all."""
    mine = sorted(
        (r for r in runs if (r.setup, r.page) == (setup, page)),
        key=lambda r: r.measured.report.requests_per_second,
    )
    return dataclasses.replace(
        mine[len(mine) // 2],
        pooled=max(r.pooled for r in mine),
        listening=max(r.listening for r in mine),
    )


def _port(url: str) -> int:
    """The port of the embedded server's URL (its socket file is named after it)."""

    async def ask() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SHOW port"))
        finally:
            await conn.close()

    return asyncio.run(ask())


def main() -> int:
    args, sizes = options.budget_arguments(__doc__.splitlines()[0])
    if args.database_url:
        raise SystemExit("bench/replica.py makes its own servers: --database-url does not apply")
    stack.require("wrk", "nginx", "pgbouncer")
    pgbouncer = Pooler.on_path()
    # Reads routed, and transactions committed, per round: a round of each takes a second or two.
    count, rounds = (2_000, 3) if args.quick else (2_000, 9)
    load = os.getloadavg()
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="replicabench-") as tmp,
        stack.processes() as started,
        scale.budgets(args.budget, args.period_ms) as (made, budget_line),
    ):
        stack.log(budget_line)
        scratch = Path(tmp)
        scratch.chmod(0o755)  # nginx workers (as nobody, under root) walk to static/
        data = scratch / "pg"
        server_url = stack.embedded_database(started, data)
        primary_url = stack.prepare(server_url, sizes.users, sizes.posts, sizes.follows)
        stack.log("making the replica ...")
        replica_url = stack.with_database(_background(started, ["db", "--replica"], data), DATABASE)
        pooled_url = stack.with_database(
            _background(started, ["db", "--pgbouncer"], data), DATABASE
        )
        servers = Servers(
            primary_url, replica_url,
            procstat.postmaster_pid(str(data / "pgdata")),
            procstat.postmaster_pid(str(data / "replica" / "pgdata")),
        )  # fmt: skip
        stack.log("routing and the position after a commit ...")
        routing_us = asyncio.run(
            replica_micro.routing(primary_url, replica_url, count * 100, rounds)
        )
        position_us = asyncio.run(replica_micro.position_cost(primary_url, count, rounds))
        replica = replica_runs(servers, sizes, started, scratch)
        budget = (made, args.budget) if made else None
        pooler = pooler_runs(
            primary_url, pooled_url, sizes, started, scratch, budget, pgbouncer.prepares,
            rounds=1 if args.quick else POOLER_ROUNDS,
        )  # fmt: skip
    head = (
        f"`{report.command_line(sys.argv)}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {sizes.users:,} users, "
        f"{sizes.posts:,} posts, {sizes.follows:,} follows; wrk -t2, {CONNECTIONS} connections "
        f"per instance, {sizes.seconds} s per run after a warm-up; PgBouncer's setups "
        f"{1 if args.quick else POOLER_ROUNDS} times each, taking turns, and each one's median "
        "round shown. The machine's load average "
        f"(1, 5, 15 min) at the start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}; the whole "
        f"run took {time.monotonic() - began:.0f} s. {pgbouncer.description}. PgBouncer's "
        f"runs: {budget_line}."
    )
    text = markdown(routing_us, position_us, replica, pooler, head)
    report.publish(text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
