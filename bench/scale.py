"""Scale-out benchmark: timelines on a realistic data set, one instance to three behind nginx,
each instance within its own CPU budget.

    .venv/bin/python bench/scale.py [--quick] [--budget CORES] [--period-ms MS]
        [--connections N] [--seconds S] [--rounds N] [--database-url URL]
        [--write docs/benchmarks.md]

Seeds 10,000 users, 500,000 posts and 200,000 follows (`microblog seed`), then measures
requests/s, latency and CPU per request with wrk (Debian: apt-get install wrk nginx) for the
logged-in home timeline and the anonymous public timeline: one instance directly, and through
the repository's nginx.conf with 1, 2 and 3 instances. The same runs against
bench/baseline_app.py (a bare Quart + asyncpg + jinja2 page of 20 rows) give the baseline at
each instance count. Every instance, ours and the baseline's, runs in its own cgroup with a CPU
quota (bench/cgroups.py), so that each one is the bottleneck and the machine is not; one
instance without a quota, directly, is the reference for what a request costs. Where cgroups
cannot be made, every instance runs unbudgeted and the output says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import cgroups
import procstat
import report
import scale_report
import stack
import wrk
from measure import Instance, measure
from scale_report import Run, Setup

INSTANCES = 3
PAGES = {
    "microblog": [("home (logged in)", "/", True), ("public (anonymous)", "/public", False)],
    "baseline": [("baseline: 20 rows", "/", False)],
}
# The reference first in each round: every other run of the round is compared with it.
REFERENCE = Setup("direct", 1, budgeted=False)
SETUPS = (REFERENCE, Setup("direct", 1), Setup("nginx", 1), Setup("nginx", 2), Setup("nginx", 3))


@dataclass(frozen=True)
class Sizes:
    users: int
    posts: int
    follows: int
    seconds: int
    # wrk's connections for each instance measured, so every instance sees the same queue
    # whatever their number: enough to keep one busy through its slices of CPU time.
    connections: int
    # Every run is repeated this often, in turn with the others. This machine's speed drifts
    # by a fifth from one minute to the next, so ratios are taken within a round, between
    # runs made moments apart, and the median of the rounds' ratios is reported.
    rounds: int


FULL = Sizes(users=10_000, posts=500_000, follows=200_000, seconds=5, connections=8, rounds=5)
QUICK = Sizes(users=1_000, posts=20_000, follows=10_000, seconds=2, connections=8, rounds=1)
# Three instances of 0.3 cores, PostgreSQL, nginx and wrk take about 1.3 of 2 cores.
BUDGET = 0.3  # of a core, for each instance
# The quota's period: slices of budget x period. Slices of a few requests' CPU (10-20 ms
# periods) cost each request a third to a half more CPU than running free; 100 ms (the
# kernel's default) stays near it (docs/benchmarks.md, "Scale-out: method").
PERIOD_MS = 100


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark on the seeded data set takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--write", type=Path, help="record the results in this markdown file")
    return parser


def arguments(description: str) -> tuple[argparse.Namespace, Sizes]:
    """The common options, and the sizes they choose."""
    args = parser(description).parse_args()
    return args, QUICK if args.quick else FULL


def scale_arguments() -> tuple[argparse.Namespace, Sizes]:
    options = parser(__doc__.splitlines()[0])
    options.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help=f"cores for each instance (default {BUDGET}; 0: no budgets)",
    )
    options.add_argument(
        "--period-ms",
        type=float,
        default=PERIOD_MS,
        help=f"the quota's enforcement period (default {PERIOD_MS} ms)",
    )
    options.add_argument("--connections", type=int, help="wrk's connections per instance")
    options.add_argument("--seconds", type=int, help="each run's length")
    options.add_argument("--rounds", type=int, help="how often every run is made")
    args = options.parse_args()
    sizes = QUICK if args.quick else FULL
    chosen = {n: v for n in ("connections", "seconds", "rounds") if (v := getattr(args, n))}
    if args.budget * INSTANCES >= (os.cpu_count() or 1):
        options.error(f"{INSTANCES} instances of {args.budget} cores leave no room here")
    if args.budget:
        try:
            cgroups.quota_settings(1, args.budget, round(args.period_ms * 1000))
        except ValueError as error:
            options.error(str(error))
    return args, replace(sizes, **chosen)


@contextmanager
def budgets(cores: float, period_ms: float) -> Iterator[tuple[cgroups.Budgets | None, str]]:
    """This machine's CPU budgets and a line that says what they are, or None and why not."""
    unbudgeted = "every instance shares the machine's cores, unbudgeted"
    if cores == 0:
        yield None, f"CPU budget: none (--budget 0): {unbudgeted}"
        return
    try:
        made = cgroups.Budgets.here(round(period_ms * 1000))
    except cgroups.Unavailable as why:
        made, reason = None, str(why)
    if made is None:
        yield None, f"CPU budget: none, as {reason}: {unbudgeted}"
        return
    with made:
        yield (
            made,
            (
                f"CPU budget: {cores:g} of a core for each instance ({made.description}); "
                f"{INSTANCES} instances take at most {cores * INSTANCES:g} of the "
                f"{os.cpu_count()} cores"
            ),
        )


def fleet(servers: list[stack.Server], kind: str, made: cgroups.Budgets | None) -> list[Instance]:
    """The servers as measured instances, each in a group of its own when there are budgets."""
    instances = []
    for number, server in enumerate(servers, 1):
        group = made.group(f"{kind}-{number}") if made else None
        if group:
            group.add(server.popen.pid)
        instances.append(Instance(server.popen.pid, group))
    return instances


@dataclass(frozen=True)
class Bench:
    """What every run of one benchmark shares."""

    sizes: Sizes
    budget: float | None
    cookie: str
    postmaster: int | None
    scratch: Path


def run_setup(
    bench: Bench,
    number: int,
    setup: Setup,
    kind: str,
    servers: list[stack.Server],
    instances: list[Instance],
) -> Iterator[Run]:
    """Every page of one kind of app in one setup."""
    servers, instances = servers[: setup.instances], instances[: setup.instances]
    cores = bench.budget if setup.budgeted else None
    for instance in instances:
        if instance.group:
            instance.group.limit(cores)
    others = {"postgres": bench.postmaster} if bench.postmaster else {}
    front = (
        stack.nginx(servers, bench.scratch / "site")
        if setup.target == "nginx"
        else nullcontext(servers[0])
    )
    with front as server:
        if setup.target == "nginx":
            others["nginx"] = server.popen.pid
        for page, path, logged_in in PAGES[kind]:
            connections = bench.sizes.connections * setup.instances
            measured = measure(
                server.url + path,
                connections,
                bench.sizes.seconds,
                bench.cookie if logged_in else None,
                instances,
                others,
                cores,
            )
            yield Run(number, page, setup, measured)


def run_all(
    bench: Bench,
    fleets: dict[str, tuple[list[stack.Server], list[Instance]]],
    setups: tuple[Setup, ...],
) -> list[Run]:
    runs: list[Run] = []
    for number in range(1, bench.sizes.rounds + 1):
        for setup in setups:
            for kind, (servers, instances) in fleets.items():
                for run in run_setup(bench, number, setup, kind, servers, instances):
                    runs.append(run)
                    stack.log(scale_report.describe(run, scale_report.unbudgeted_ms(runs, run)))
    return runs


def run_everything(
    args: argparse.Namespace, sizes: Sizes, made: cgroups.Budgets | None, started: list,
    scratch: Path,
) -> tuple[list[Run], int]:  # fmt: skip
    """The database, the instances in their groups, and every round; the runs, and how many
    accounts the home timeline's reader follows."""
    scratch.chmod(0o755)  # nginx workers (as nobody, under root) walk to static/
    server_url = args.database_url or stack.embedded_database(started, scratch / "pg")
    postmaster = (
        None if args.database_url else procstat.postmaster_pid(str(scratch / "pg" / "pgdata"))
    )
    database_url = stack.prepare(server_url, sizes.users, sizes.posts, sizes.follows)
    apps = stack.start_servers(started, "microblog", INSTANCES, database_url, scratch / "apps")
    baselines = stack.start_servers(
        started, "baseline", INSTANCES, database_url, scratch / "baselines"
    )
    cookie, following = stack.session_cookie(apps[0], database_url)
    fleets = {
        "microblog": (apps, fleet(apps, "microblog", made)),
        "baseline": (baselines, fleet(baselines, "baseline", made)),
    }
    bench = Bench(sizes, args.budget if made else None, cookie, postmaster, scratch)
    return run_all(bench, fleets, SETUPS if made else SETUPS[1:]), following


def header(sizes: Sizes, budget_line: str, following: int, elapsed: float) -> str:
    rounds = f"{sizes.rounds} time" + ("s" if sizes.rounds != 1 else "")
    return (
        f"`{report.command_line(sys.argv)}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}: {sizes.users:,} users, {sizes.posts:,} posts, "
        f"{sizes.follows:,} follows. {budget_line}. wrk -t2 with {sizes.connections} "
        f"connections per instance, {sizes.seconds} s per run after a "
        f"{wrk.WARM_UP_SECONDS} s warm-up; every run made {rounds}, all runs taking turns; "
        "the table shows each run's median round; each ratio is taken within each round, and "
        "the median and the range over the rounds are shown. The home timeline is that of a "
        f"demo account following {following} people. The whole run took {elapsed:.0f} s."
    )


def main() -> int:
    began = time.monotonic()
    args, sizes = scale_arguments()
    stack.require("wrk", "nginx")
    # Ctrl-C and SIGTERM alike stop every process and remove every cgroup on the way out
    # (Ctrl-C too when started from a shell that had it ignored, as in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with (
        tempfile.TemporaryDirectory(prefix="scalebench-") as tmp,
        budgets(args.budget, args.period_ms) as (made, budget_line),
        stack.processes() as started,
    ):
        stack.log(budget_line)
        runs, following = run_everything(args, sizes, made, started, Path(tmp))
    elapsed = time.monotonic() - began
    stack.log(f"the whole run took {elapsed:.0f} s")
    text = scale_report.section(runs, header(sizes, budget_line, following, elapsed))
    report.publish(text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
