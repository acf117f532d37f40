"""What every benchmark on the seeded data set is given: its sizes, for a full run and a quick
one, and its command-line options; and bench/scale.py's own (the CPU budget, the quota's
period, what to repeat how often)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path

import cgroups
from growth import GrowthSizes

INSTANCES = 3  # the most instances of each kind bench/scale.py measures at once


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
    growth: GrowthSizes
    memory_requests: int  # answered by one instance while its memory is sampled
    memory_every: int  # requests between samples
    latency_seconds: int  # of the constant rate below saturation


# About 20 minutes on 2 cores (docs/benchmarks.md, "Scale-out: method", Time).
FULL = Sizes(
    users=10_000, posts=500_000, follows=200_000, seconds=5, connections=8, rounds=5,
    growth=GrowthSizes(users=10_000, follows=200_000, posts=(100_000, 1_000_000), seconds=3,
                       connections=8, rounds=3),
    memory_requests=100_000, memory_every=10_000, latency_seconds=20,
)  # fmt: skip
# Every section, small: the readers following 5,000 need 5,001 accounts.
QUICK = replace(
    FULL, users=1_000, posts=20_000, follows=10_000, seconds=2, rounds=1,
    growth=replace(FULL.growth, users=5_100, follows=20_000, posts=(10_000, 100_000),
                   seconds=1, rounds=1),
    memory_requests=5_000, memory_every=1_000, latency_seconds=5,
)  # fmt: skip
# Three instances of 0.2 cores, PostgreSQL, nginx and wrk take about 1 of 2 cores. At 0.3
# they took 1.5 with the home page, and each instance's CPU per request rose by a fifth over
# one instance alone: the shared cores, not the app (docs/benchmarks.md, "Scale-out: method").
BUDGET = 0.2  # of a core, for each instance
# The quota's period: slices of budget x period. Slices of a few requests' CPU (10-20 ms
# periods) cost each request a third to a half more CPU than running free; 30 ms slices
# (0.3 of 100 ms, the kernel's default period, or 0.2 of 150 ms) stay near it.
PERIOD_MS = 150


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


def add_budget(options: argparse.ArgumentParser) -> None:
    """--budget and --period-ms: each app instance's CPU budget (bench/cgroups.py)."""
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


def check_budget(options: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.budget * INSTANCES >= (os.cpu_count() or 1):
        options.error(f"{INSTANCES} instances of {args.budget} cores leave no room here")
    if args.budget:
        try:
            cgroups.quota_settings(1, args.budget, round(args.period_ms * 1000))
        except ValueError as error:
            options.error(str(error))


def budget_arguments(description: str) -> tuple[argparse.Namespace, Sizes]:
    """The common options and the budget's."""
    options = parser(description)
    add_budget(options)
    args = options.parse_args()
    check_budget(options, args)
    return args, QUICK if args.quick else FULL


def scale_arguments(description: str) -> tuple[argparse.Namespace, Sizes]:
    """bench/scale.py's options; --seconds, --rounds and --connections are its table's."""
    options = parser(description)
    add_budget(options)
    options.add_argument("--connections", type=int, help="wrk's connections per instance")
    options.add_argument("--seconds", type=int, help="each run's length in the scale-out table")
    options.add_argument("--rounds", type=int, help="how often each run of the table is made")
    args = options.parse_args()
    check_budget(options, args)
    sizes = QUICK if args.quick else FULL
    chosen = {n: v for n in ("connections", "seconds", "rounds") if (v := getattr(args, n))}
    return args, replace(sizes, **chosen)
