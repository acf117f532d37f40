"""Scale-out benchmark: timelines on a realistic data set, one instance to three behind nginx,
each instance within its own CPU budget; then latency below saturation, memory over many
requests, and how the home page's cost grows with the work it does. One command, every section:

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

Then (bench/sections.py): the home page at a constant 70% of the budgeted instance's rate
(bench/openloop.py), one instance's memory over 100,000 requests (bench/memory.py), and the
home pages of readers following 10 to 5,000 accounts on 100,000 and 1,000,000 posts, from the
primary and through a streaming replica of the embedded server (bench/growth.py). --seconds,
--rounds and --connections change the scale-out table's runs only."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import cgroups
import growth
import procstat
import report
import scale_report
import sections
import stack
import wrk
from measure import Instance, measure
from options import INSTANCES, Sizes, scale_arguments
from scale_report import Run, Setup

PAGES = {
    "microblog": [("home (logged in)", "/", True), ("public (anonymous)", "/public", False)],
    "baseline": [("baseline: 20 rows", "/", False)],
}
# The reference first in each round: every other run of the round is compared with it.
REFERENCE = Setup("direct", 1, budgeted=False)
SETUPS = (REFERENCE, Setup("direct", 1), Setup("nginx", 1), Setup("nginx", 2), Setup("nginx", 3))


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


class Timings:
    """How long each part of the run took, in order."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        yield
        self.seconds[name] = time.monotonic() - began
        stack.log(f"{name} took {self.seconds[name]:.0f} s")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.items())


@dataclass
class Results:
    runs: list[Run]
    following: int  # how many accounts the scale-out table's home reader follows
    sections: list[str]  # the sections after the scale-out table's


def run_everything(
    args: argparse.Namespace, sizes: Sizes, made: cgroups.Budgets | None, started: list,
    scratch: Path, timings: Timings,
) -> Results:  # fmt: skip
    """The databases, the instances in their groups, every round of the scale-out table, then
    the other sections."""
    scratch.chmod(0o755)  # nginx workers (as nobody, under root) walk to static/
    server_url = args.database_url or stack.embedded_database(started, scratch / "pg")
    postmaster = (
        None if args.database_url else procstat.postmaster_pid(str(scratch / "pg" / "pgdata"))
    )
    # Made before the data, the replica receives it as it is written.
    replica = None if args.database_url else sections.replica_beside(started, scratch / "pg")
    with timings.part("seeding"):
        database_url = stack.prepare(server_url, sizes.users, sizes.posts, sizes.follows)
        grown = growth.prepare(server_url, sizes.growth)
    with timings.part("scale-out table"):
        apps = stack.start_servers(started, "microblog", INSTANCES, database_url, scratch / "apps")
        baselines = stack.start_servers(
            started, "baseline", INSTANCES, database_url, scratch / "baselines"
        )
        cookie, following = stack.session_cookie(apps[0], database_url)
        fleets = {
            "microblog": (apps, fleet(apps, "microblog", made)),
            "baseline": (baselines, fleet(baselines, "baseline", made)),
        }
        budget = args.budget if made else None
        bench = Bench(sizes, budget, cookie, postmaster, scratch)
        runs = run_all(bench, fleets, SETUPS if made else SETUPS[1:])
    first = sections.Fleet(apps[0], fleets["microblog"][1][0], cookie)
    done = []
    with timings.part("latency under load"):
        done.append(sections.latency(first, runs, budget, sizes.latency_seconds))
    with timings.part("memory"):
        done.append(
            sections.memory_curve(
                first, sizes.memory_requests, sizes.memory_every, sizes.connections
            )
        )
    with timings.part("cost growth"):
        if replica:
            stack.wait_for_replay(database_url, stack.with_database(replica[0], "postgres"))
        done.append(
            sections.cost_growth(
                sizes.growth, grown, replica, postmaster, started, scratch / "growth"
            )
        )
    return Results(runs, following, done)


def header(sizes: Sizes, budget_line: str, following: int, timings: Timings) -> str:
    rounds = f"{sizes.rounds} time" + ("s" if sizes.rounds != 1 else "")
    return (
        f"`{report.command_line(sys.argv)}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}: {sizes.users:,} users, {sizes.posts:,} posts, "
        f"{sizes.follows:,} follows. {budget_line}. wrk -t2 with {sizes.connections} "
        f"connections per instance, {sizes.seconds} s per run after a "
        f"{wrk.WARM_UP_SECONDS} s warm-up; every run made {rounds}, all runs taking turns; "
        "the table shows each run's median round; each ratio is taken within each round, and "
        "the median and the range over the rounds are shown. The home timeline is that of a "
        f"demo account following {following} people. The whole run, with the sections "
        f"below, took {timings.elapsed:.0f} s: {timings}."
    )


def main() -> int:
    timings = Timings()
    args, sizes = scale_arguments(__doc__.splitlines()[0])
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
        results = run_everything(args, sizes, made, started, Path(tmp), timings)
    stack.log(f"the whole run took {timings.elapsed:.0f} s: {timings}")
    texts = [
        scale_report.section(results.runs, header(sizes, budget_line, results.following, timings)),
        *results.sections,
    ]
    print("\n\n".join(texts))
    if args.write:
        for text in texts:
            report.write_section(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
