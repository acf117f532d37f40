"""Job queue benchmark: microblog's queue beside pgqueuer and procrastinate, on one PostgreSQL.

    .venv/bin/python bench/jobs.py [--quick] [--database-url URL] [--write docs/benchmarks.md]

Starts an embedded PostgreSQL in a temporary folder unless --database-url (or
BENCH_DATABASE_URL) names a server; each system and each measurement gets a fresh database
cloned from a template with that system's schema. Progress goes to stderr, the markdown
tables to stdout. See report.py for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import procstat
import report
from systems import ROOT, SYSTEMS, WORKERS, System, WorkerSetup

from microblog.db.embedded import start_embedded_server

PREFIX = "jobsbench_"
# A drain during which other processes used more CPU than this is measured again (up to
# Sizes.attempts times, if it is short enough), and the quietest attempt is kept.
QUIET_CORES = 0.15
RETRY_UNDER_SECONDS = 60.0
READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 900.0
POLL_SECONDS = 0.01

LATENCY_TRIGGERS = """
CREATE TABLE bench_latency (
    job_id      bigint PRIMARY KEY,
    enqueued_at timestamptz NOT NULL,
    claimed_at  timestamptz
);
CREATE FUNCTION bench_enqueued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_latency (job_id, enqueued_at) VALUES (NEW.id, clock_timestamp());
    RETURN NULL;
END $$;
CREATE FUNCTION bench_claimed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bench_latency SET claimed_at = clock_timestamp()
    WHERE job_id = NEW.id AND claimed_at IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_enqueued AFTER INSERT ON {table}
    FOR EACH ROW EXECUTE FUNCTION bench_enqueued();
CREATE TRIGGER bench_claimed AFTER UPDATE ON {table}
    FOR EACH ROW WHEN ({claimed_when}) EXECUTE FUNCTION bench_claimed();
"""


@dataclass(frozen=True)
class Sizes:
    one_by_one: int
    bulk: int
    batch: int
    drain: int
    latency: int
    gap: float  # seconds between two enqueues in the latency run
    # Seconds a ready worker idles before its jobs arrive: long enough for its idle polls to
    # have run its statements a few times, as on a worker that has been up for a while.
    idle: float
    attempts: int  # at most this many drains when other processes load the machine


FULL = Sizes(
    one_by_one=2_000,
    bulk=20_000,
    batch=1_000,
    drain=20_000,
    latency=200,
    gap=0.02,
    idle=10.0,
    attempts=3,
)
QUICK = Sizes(
    one_by_one=200, bulk=2_000, batch=1_000, drain=2_000, latency=40, gap=0.02, idle=2.0, attempts=1
)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{name}{sep}{query}"


class Bench:
    def __init__(self, server_url: str, sizes: Sizes, scratch: Path) -> None:
        self.server_url = server_url
        self.sizes = sizes
        self.scratch = scratch
        self.created: list[str] = []
        self.admin: asyncpg.Connection
        self.postmaster: int | None = None

    # Databases ----------------------------------------------------------------------------

    async def open(self) -> report.Machine:
        self.admin = await asyncpg.connect(with_database(self.server_url, "postgres"))
        settings = {}
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            settings[name] = await self.admin.fetchval(f"SHOW {name}")
        try:
            self.postmaster = procstat.postmaster_pid(
                await self.admin.fetchval("SHOW data_directory")
            )
        except asyncpg.PostgresError:  # not allowed to see it: no server CPU figures
            self.postmaster = None
        for system in SYSTEMS:
            url = await self.create(f"{system.name}_template")
            await system.install(url)
        return report.Machine.here(settings)

    async def create(self, name: str, template: str | None = None) -> str:
        name = PREFIX + name
        await self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clone = f' TEMPLATE "{PREFIX}{template}"' if template else ""
        await self.admin.execute(f'CREATE DATABASE "{name}"{clone}')
        self.created.append(name)
        return with_database(self.server_url, name)

    async def fresh(self, system: System, purpose: str) -> str:
        return await self.create(f"{system.name}_{purpose}", f"{system.name}_template")

    async def close(self) -> None:
        for name in reversed(self.created):
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await self.admin.close()

    # Enqueueing ---------------------------------------------------------------------------

    async def enqueue(self, system: System) -> report.EnqueueResult:
        sizes = self.sizes
        async with system.client(await self.fresh(system, "enqueue_one")) as client:
            started = time.perf_counter()
            for _ in range(sizes.one_by_one):
                await client.enqueue_one()
            one = sizes.one_by_one / (time.perf_counter() - started)
        async with system.client(await self.fresh(system, "enqueue_bulk")) as client:
            started = time.perf_counter()
            for _ in range(sizes.bulk // sizes.batch):
                await client.enqueue_batch(sizes.batch)
            bulk = sizes.bulk / (time.perf_counter() - started)
        progress(f"{system.name}: enqueue {one:,.0f}/s one by one, {bulk:,.0f}/s in batches")
        return report.EnqueueResult(system.name, one, bulk)

    # Workers ------------------------------------------------------------------------------

    @asynccontextmanager
    async def worker(
        self, setup: WorkerSetup, url: str, tag: str
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        """A worker process, started and ready to take jobs; stopped (SIGTERM) on the way out."""
        log_path = self.scratch / f"{tag}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *setup.argv,
                cwd=ROOT,
                env=setup.environment(url, self.scratch / "microblog-data"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if setup.ready_sql is None else log,
                stderr=log,
            )
            try:
                async with asyncio.timeout(READY_TIMEOUT):
                    await self._until_ready(setup, process, url, log_path)
                await asyncio.sleep(self.sizes.idle if setup.idle is None else setup.idle)
                yield process
            finally:
                if process.returncode is None:
                    process.terminate()
                    try:
                        async with asyncio.timeout(30):
                            await process.wait()
                    except TimeoutError:
                        process.kill()
                        await process.wait()

    async def _until_ready(
        self, setup: WorkerSetup, process: asyncio.subprocess.Process, url: str, log: Path
    ) -> None:
        if setup.ready_sql is None:
            line = await process.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"{setup.label} did not start: {tail(log)}")
            return
        conn = await asyncpg.connect(url)
        try:
            while not await conn.fetchval(setup.ready_sql):
                if process.returncode is not None:
                    raise RuntimeError(f"{setup.label} exited: {tail(log)}")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def _until_done(
        self, conn: asyncpg.Connection, system: System, process: asyncio.subprocess.Process
    ) -> None:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            while await conn.fetchval(system.remaining_sql):
                if process.returncode is not None:
                    raise RuntimeError(f"the {system.name} worker exited during the run")
                await asyncio.sleep(POLL_SECONDS)

    def _cpu_snapshot(self, worker: int) -> dict[str, float]:
        """CPU seconds so far of the worker, the server, and everything else on the machine
        except this process (the load we did not make, which skews the numbers)."""
        snapshot = {"worker": procstat.cpu_seconds(worker)}
        ours = snapshot["worker"] + procstat.cpu_seconds(os.getpid())
        if self.postmaster:
            snapshot["server"] = procstat.server_cpu_seconds(self.postmaster)
            ours += snapshot["server"]
            snapshot["others"] = procstat.machine_busy_seconds() - ours
        return snapshot

    # Draining -----------------------------------------------------------------------------

    async def drain(self, setup: WorkerSetup, tag: str) -> report.DrainResult:
        system, count = setup.system, self.sizes.drain
        url = await self.fresh(system, f"drain_{tag}")
        poller = await asyncpg.connect(url)
        try:
            async with self.worker(setup, url, f"drain_{tag}") as process:
                # The whole backlog commits at once: the clock starts just before COMMIT.
                async with system.client(url) as client:
                    await client.begin()
                    for _ in range(count // self.sizes.batch):
                        await client.enqueue_in_transaction(self.sizes.batch)
                    before = self._cpu_snapshot(process.pid)
                    started = time.perf_counter()
                    await client.commit()
                await self._until_done(poller, system, process)
                seconds = time.perf_counter() - started
                after = self._cpu_snapshot(process.pid)
            finished = await poller.fetchval(system.finished_sql)
        finally:
            await poller.close()
        if finished != count:
            raise RuntimeError(f"{setup.label}: {finished} of {count} jobs finished")
        used = {key: after[key] - before[key] for key in after if key in before}
        result = report.DrainResult(
            setup.label,
            count,
            seconds,
            cpu_seconds=used["worker"],
            server_cpu_seconds=used.get("server"),
            other_cpu_seconds=used.get("others"),
        )
        others = "" if result.other_cores is None else f", others {result.other_cores:.2f} cores"
        progress(
            f"{setup.label}: drained {count:,} in {seconds:.2f} s ({result.rate:,.0f}/s{others})"
        )
        return result

    # Latency ------------------------------------------------------------------------------

    async def latency(self, setup: WorkerSetup, tag: str) -> report.LatencyResult:
        system = setup.system
        url = await self.fresh(system, f"latency_{tag}")
        poller = await asyncpg.connect(url)
        try:
            await poller.execute(
                LATENCY_TRIGGERS.format(table=system.table, claimed_when=system.claimed_when)
            )
            async with self.worker(setup, url, f"latency_{tag}") as process:
                ids = []
                async with system.client(url) as client:
                    for _ in range(self.sizes.latency):
                        ids.append(await client.enqueue_one())
                        await asyncio.sleep(self.sizes.gap)
                await self._until_done(poller, system, process)
            claimed = await poller.fetch(
                """
                SELECT extract(epoch FROM claimed_at - enqueued_at) * 1000 AS ms
                FROM bench_latency WHERE job_id = ANY($1::bigint[])
                """,
                ids,
            )
            own = None
            if system.name == "microblog":
                own = await poller.fetch(
                    """
                    SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms
                    FROM infra.jobs WHERE id = ANY($1::bigint[])
                    """,
                    ids,
                )
        finally:
            await poller.close()
        if len(claimed) != len(ids) or any(row["ms"] is None for row in claimed):
            raise RuntimeError(f"{setup.label}: not every job was seen starting")
        result = report.LatencyResult(
            setup.label,
            [float(row["ms"]) for row in claimed],
            [float(row["ms"]) for row in own] if own else None,
        )
        progress(f"{setup.label}: latency p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms")
        return result


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def drain_quietly(bench: Bench, setup: WorkerSetup, tag: str) -> report.DrainResult:
    """The drain with the least CPU taken by processes outside the benchmark."""
    best = None
    for attempt in range(bench.sizes.attempts):
        result = await bench.drain(setup, f"{tag}_{attempt}")
        if best is None or (result.other_cores or 0) < (best.other_cores or 0):
            best = result
        if (result.other_cores or 0) <= QUIET_CORES or result.seconds > RETRY_UNDER_SECONDS:
            break
        if attempt + 1 == bench.sizes.attempts:
            break
        progress(f"  other processes used {result.other_cores:.2f} cores: measuring again")
    return best


async def run(server_url: str, sizes: Sizes, scratch: Path) -> report.Results:
    bench = Bench(server_url, sizes, scratch)
    machine = await bench.open()
    try:
        enqueued = [await bench.enqueue(system) for system in SYSTEMS]
        drained = [await drain_quietly(bench, setup, f"w{i}") for i, setup in enumerate(WORKERS)]
        latencies = [
            await bench.latency(setup, f"w{i}") for i, setup in enumerate(WORKERS) if setup.latency
        ]
    finally:
        await bench.close()
    sizes_used = dict(sizes.__dict__)
    return report.Results(machine, sizes_used, enqueued, drained, latencies)


def revision() -> str:
    """The commit of the code under test, and whether microblog/ differs from it."""
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "microblog"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown revision"
    return f"commit {commit}" + (" with uncommitted changes" if changed else "")


def start_scratch_server() -> tuple[str, Path]:
    """An embedded PostgreSQL in a temporary folder, stopped and deleted at exit."""
    scratch = Path(tempfile.mkdtemp(prefix="jobsbench-"))
    # atexit runs last-registered first: pgserver stops the server before the folder goes.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    progress(f"starting an embedded PostgreSQL in {scratch}")
    url = start_embedded_server(scratch / "postgres").url
    return url, scratch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, as a smoke test")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="a PostgreSQL server to use (default: $BENCH_DATABASE_URL, else an embedded one)",
    )
    parser.add_argument("--write", type=Path, help="replace the Job queue section of this file")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.database_url:
        server_url, scratch = args.database_url, Path(tempfile.mkdtemp(prefix="jobsbench-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    else:
        server_url, scratch = start_scratch_server()
    results = asyncio.run(run(server_url, QUICK if args.quick else FULL, scratch))
    results.command = report.command_line(sys.argv)
    results.revision = revision()
    results.external_server = bool(args.database_url)
    results.runtime = time.perf_counter() - started
    section = report.markdown(results)
    print(section)
    if args.write:
        report.write_section(args.write, section)
        progress(f"wrote the Job queue section of {args.write}")


if __name__ == "__main__":
    main()
