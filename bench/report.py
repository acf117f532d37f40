"""The results of bench/jobs.py as markdown, and the "Job queue" section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SECTION = "## Job queue"
TARGET_RATIO = 1.5
TARGET_P50_MS = 5.0
TARGET_P99_MS = 25.0
QUIET_CORES = 0.15  # bench/jobs.py measures a drain again when others used more than this
# Why the benchmark has two microblog rows: the plan of the claim statement.
PLAN_NOTE = (
    "- The claim's plan sets microblog's drain rate. Planned for a table whose statistics say "
    "it is nearly empty, as here, a plain claim statement can read every pending row through "
    "a bitmap scan of `jobs_pending_idx` and sort them all to take 100, so each claim costs "
    "more the bigger the backlog (about half the rate above). microblog claims through "
    "`infra.claim_jobs()`, which plans without sequential and bitmap scans: the ordered index "
    "scan that stops after 100 is its only plan, whatever the statistics say."
)
INTRO = """# Benchmarks

Numbers measured on one machine by the scripts in `bench/`; each section names the command
that wrote it. They move by tens of percent between runs and machines: compare the rows of one
section with each other, not with another machine's.
"""


@dataclass(frozen=True)
class Machine:
    date: str
    cores: int
    cpu: str
    kernel: str
    python: str
    postgres: dict[str, str]
    versions: dict[str, str]

    @classmethod
    def here(cls, postgres: dict[str, str]) -> Machine:
        cpu = "unknown CPU"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        packages = ("pgqueuer", "procrastinate", "asyncpg", "psycopg")
        return cls(
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            cores=len(os.sched_getaffinity(0)),
            cpu=cpu,
            kernel=platform.release(),
            python=platform.python_version(),
            postgres=postgres,
            versions={name: importlib.metadata.version(name) for name in packages},
        )


@dataclass(frozen=True)
class EnqueueResult:
    system: str
    one_by_one: float  # jobs per second
    bulk: float


@dataclass(frozen=True)
class DrainResult:
    label: str
    jobs: int
    seconds: float
    cpu_seconds: float  # the worker process
    server_cpu_seconds: float | None  # every PostgreSQL process; None when not visible
    other_cpu_seconds: float | None  # every other process on the machine, not ours

    @property
    def other_cores(self) -> float | None:
        if self.other_cpu_seconds is None:
            return None
        return max(self.other_cpu_seconds, 0.0) / self.seconds

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def cpu_ms_per_1000(self) -> float:
        return self.cpu_seconds * 1000 / self.jobs * 1000

    @property
    def core_share(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def server_ms_per_1000(self) -> float | None:
        if self.server_cpu_seconds is None:
            return None
        return self.server_cpu_seconds * 1000 / self.jobs * 1000


@dataclass(frozen=True)
class LatencyResult:
    label: str
    ms: list[float]  # claim time minus insert time, from the triggers
    own_ms: list[float] | None = None  # microblog: started_at - created_at

    @property
    def p50(self) -> float:
        return percentile(self.ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.ms, 0.99)


@dataclass
class Results:
    machine: Machine
    sizes: dict[str, float]
    enqueued: list[EnqueueResult]
    drained: list[DrainResult]
    latencies: list[LatencyResult]
    command: str = ""
    revision: str = ""
    external_server: bool = False
    runtime: float = 0.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -int(-len(ordered) * fraction // 1))
    return ordered[rank - 1]


def command_line(argv: list[str]) -> str:
    """The command as typed, without a database URL (it may hold a password)."""
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--database-url":
            skip = True
        elif not word.startswith("--database-url="):
            words.append(word)
    words[0] = os.path.relpath(words[0]) if os.path.isabs(words[0]) else words[0]
    return ".venv/bin/python " + shlex.join(words)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _enqueue_table(results: Results) -> list[str]:
    apis = {
        "microblog": "microblog (`enqueue`, `enqueue_many`)",
        "pgqueuer": "pgqueuer (`Queries.enqueue`, scalar and lists)",
        "procrastinate": "procrastinate (`defer_async`, `batch_defer_async`)",
    }
    batch = _n(results.sizes["batch"])
    lines = [
        f"| queue | one by one, each in its own transaction (jobs/s) "
        f"| batches of {batch} (jobs/s) |",
        "|---|--:|--:|",
    ]
    for row in results.enqueued:
        lines.append(f"| {apis[row.system]} | {_n(row.one_by_one)} | {_n(row.bulk)} |")
    return lines


def _worker_table(results: Results) -> list[str]:
    latency = {row.label: row for row in results.latencies}
    lines = [
        f"| worker process | drain {_n(results.sizes['drain'])} no-op jobs (jobs/s) "
        "| worker CPU per 1,000 jobs (ms) | worker CPU, share of one core "
        "| PostgreSQL CPU per 1,000 jobs (ms) | other processes' load during the drain (cores) "
        "| enqueue→start p50 (ms) | p99 (ms) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in results.drained:
        lat = latency.get(row.label)
        cells = [
            row.label,
            _n(row.rate),
            f"{row.cpu_ms_per_1000:.0f}",
            f"{row.core_share:.0%}",
            _maybe(row.server_ms_per_1000, "{:.0f}"),
            _maybe(row.other_cores, "{:.2f}"),
            _maybe(lat and lat.p50, "{:.1f}"),
            _maybe(lat and lat.p99, "{:.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _maybe(value: float | None, template: str) -> str:
    return "—" if value is None else template.format(value)


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _ratios(results: Results) -> list[str]:
    ours, just_started = results.drained[0], results.drained[1]
    pgqueuer = max((r for r in results.drained if r.label.startswith("pgqueuer")), key=_rate)
    floor = next(r for r in results.drained if r.label.startswith("floor"))
    ratio = ours.rate / pgqueuer.rate
    latency = next(r for r in results.latencies if r.label == ours.label)
    lines = [
        f"- Drain rate, microblog / fastest pgqueuer ({pgqueuer.label}): **{ratio:.2f}x** "
        f"(target ≥ {TARGET_RATIO}: {_verdict(ratio >= TARGET_RATIO)}); with the jobs "
        f"arriving 1 s after microblog's worker started: {just_started.rate / pgqueuer.rate:.2f}x",
        f"- Drain rate, microblog / floor: {ours.rate / floor.rate:.2f}",
        f"- microblog enqueue→start latency p50 **{latency.p50:.1f} ms** "
        f"(target < {TARGET_P50_MS:.0f} ms: {_verdict(latency.p50 < TARGET_P50_MS)}), "
        f"p99 **{latency.p99:.1f} ms** "
        f"(target < {TARGET_P99_MS:.0f} ms: {_verdict(latency.p99 < TARGET_P99_MS)}), "
        f"max {max(latency.ms):.1f} ms",
    ]
    if latency.own_ms:
        own = latency.own_ms
        lines.append(
            f"- The same jobs by microblog's own columns, `started_at - created_at`: "
            f"p50 {percentile(own, 0.5):.1f} ms, p99 {percentile(own, 0.99):.1f} ms, "
            f"max {max(own):.1f} ms"
        )
    noisy = [r for r in results.drained if (r.other_cores or 0) > QUIET_CORES]
    if noisy:
        lines.append(
            f"- Other processes used more than {QUIET_CORES} cores during "
            f"{len(noisy)} of the drains (column above): those rows are less trustworthy."
        )
    return lines


def _rate(row: DrainResult) -> float:
    return row.rate


def _method(results: Results) -> list[str]:
    sizes = results.sizes
    drain, batch = _n(sizes["drain"]), _n(sizes["batch"])
    return [
        "Method:",
        "",
        "- One machine, one PostgreSQL server. Each measurement gets a fresh database cloned "
        "from a template holding only that system's schema, so every queue starts empty and "
        "without planner statistics, as after a quiet period.",
        "- *Enqueue*: one client, sequential. One by one is one job per statement in "
        "autocommit: its own transaction, its own WAL flush. Batches use each library's bulk "
        f"call, {batch} jobs per call and transaction.",
        "- *Drain*: one worker process with the library's defaults unless the row says "
        "otherwise. microblog: `python -m microblog worker` (WORKER_CONCURRENCY=10, claims up "
        "to 10x that ahead). pgqueuer: `PgQueuer` on one asyncpg connection run by "
        "`pgqueuer.run`, on the standard asyncio loop like the others, except the uvloop row "
        "(what `pgq run` picks when uvloop is installed). procrastinate: "
        "`App.run_worker_async()` with `PsycopgConnector`. The worker starts on an empty queue; "
        f"once it is ready (registered and LISTENing) and has idled {sizes['idle']:.0f} s "
        "(unless the row says otherwise), "
        f"{drain} jobs are inserted with the library's bulk API in ONE transaction. The clock "
        "starts just before that COMMIT and stops when a poll (every 10 ms) finds none of them "
        "waiting or running; then every job is checked to have succeeded.",
        "- *CPU*: utime+stime from /proc over the drain (10 ms ticks): of the worker process; "
        "of every PostgreSQL process (exited backends included, the benchmark's polls too); "
        "and the machine's busy time minus those and the benchmark's own, shown as *other "
        "processes' load*: above about 0.1 cores, something outside the benchmark competed for "
        "the CPU and that row is suspect. A drain of under a minute with more than "
        f"{QUIET_CORES} cores of it is measured again, up to {sizes['attempts']} times in all, "
        "and the quietest attempt is shown.",
        "- *Floor*: one asyncpg connection looping over one statement that marks the previous "
        "100 jobs finished and claims the next 100 from microblog's own `infra.jobs`, no job "
        "code in between, with bitmap scans and sorts disabled and a fresh plan for every "
        "statement, so that it always walks the pending index in order whatever the "
        "statistics say: about the best one worker connection can get from this database.",
        f"- *Latency*: with the worker idle, {_n(sizes['latency'])} jobs enqueued one at a "
        f"time, {sizes['gap'] * 1000:.0f} ms apart. For this run only, triggers on the jobs "
        "table record `clock_timestamp()` when a job row is inserted and when a worker's "
        "UPDATE claims it (microblog pending→running, pgqueuer queued→picked, procrastinate "
        "todo→doing): every system timed the same way, by the server's clock, from insert to "
        "claim; each worker calls the job function as soon as its claim returns. microblog's "
        "no-op job cannot record a time itself, so its own `started_at - created_at` (the "
        "`now()` of the claiming and of the enqueuing statement) is shown as a cross-check.",
        "",
        "Caveats:",
        "",
        f"- The {results.machine.cores} cores are shared by PostgreSQL, the worker and the "
        "benchmark client: a drain is bounded by PostgreSQL's CPU as much as by the worker's, "
        "and numbers move by 10-20% between runs. Compare rows of one run.",
        "- fsync is on: enqueueing one by one is bounded by the disk's flush latency.",
        f"- Each backlog of {drain} jobs lands in a table whose statistics still say it is "
        "empty (autovacuum's ANALYZE does not come within a drain), as a burst after a quiet "
        "period would in production; how each claim query copes with that is part of the "
        "measurement.",
        PLAN_NOTE,
        "- procrastinate's defaults mean concurrency 1: a round trip to fetch and one to finish "
        "every job, over psycopg's pure-Python libpq wrapper (psycopg-binary is not among its "
        "dependencies). That is its design at defaults, not its tuned ceiling.",
        "- The jobs do nothing: these are the queue's own costs, which real jobs add to.",
    ]


def markdown(results: Results) -> str:
    machine = results.machine
    pg = machine.postgres
    versions = ", ".join(f"{name} {version}" for name, version in machine.versions.items())
    where = (
        " against an external server (--database-url or BENCH_DATABASE_URL)"
        if results.external_server
        else ""
    )
    lines = [
        SECTION,
        "",
        f"`{results.command}`{where} on {machine.date}: {machine.cores} cores ({machine.cpu}), "
        f"Linux {machine.kernel}, PostgreSQL {pg['server_version']} (fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}, "
        f"shared_buffers={pg['shared_buffers']}), Python {machine.python}, {versions}. "
        f"microblog at {results.revision}. The whole run took {results.runtime:.0f} s.",
        "",
        *_enqueue_table(results),
        "",
        *_worker_table(results),
        "",
        *_ratios(results),
        "",
        *_method(results),
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace the section of `path` that starts with the same ## heading as `section` (up to
    the next ## heading), or append it. Every benchmark records its results this way."""
    text = path.read_text(encoding="utf-8") if path.exists() else INTRO
    heading = section.split("\n", 1)[0]
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def publish(section: str, path: Path | None) -> None:
    """Print a benchmark's section, and record it in `path` when one is given (--write)."""
    print(section)
    if path is not None:
        write_section(path, section)
