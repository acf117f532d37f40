"""The replica benchmark's runs, and the section of docs/benchmarks.md they make."""

from __future__ import annotations

from dataclasses import dataclass

import options
from measure import Measurement
from replica_micro import BARE, ROUTED

from microblog.db.embedded_pooler import POOL_SIZE

SECTION = "## Read replicas and PgBouncer"
ROUTING_TARGET_US = 50.0
DIRECT, POOLED, UNCACHED = "direct", "through PgBouncer", "direct, statement cache off"
# The primary's CPU comes from /proc, in clock ticks of 10 ms: over a run's requests, less than
# this per request is what it cannot tell from none.
UNMEASURED_MS = 0.01


@dataclass(frozen=True)
class ReplicaRun:
    page: str
    replica: bool
    measured: Measurement
    primary_statements: int
    replica_statements: int
    primary_cpu_ms: float  # per request
    replica_cpu_ms: float

    @property
    def share(self) -> float:
        total = self.primary_statements + self.replica_statements
        return self.replica_statements / total if total else 0.0


@dataclass(frozen=True)
class PoolerRun:
    setup: str
    page: str
    measured: Measurement
    pooled: int  # peak server connections other than LISTEN ones
    listening: int


def _the(runs: list, **fields: object):
    """The one run with these fields."""
    return next(r for r in runs if all(getattr(r, k) == v for k, v in fields.items()))


def _rate(run: PoolerRun) -> float:
    return run.measured.report.requests_per_second


def _verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def markdown(routing_us: dict, position_us: dict, replica: list, pooler: list, head: str) -> str:
    lines = [
        SECTION,
        "",
        head,
        "",
        "| routing, in one process | µs per call (median) |",
        "|---|--:|",
    ]
    lines += [f"| {name} | {us:.2f} |" for name, us in routing_us.items()]
    overhead = routing_us[ROUTED] - routing_us[BARE]
    lines += [
        "",
        f"- Routing overhead per read: **{overhead:.1f} µs** (target < {ROUTING_TARGET_US:g} µs: "
        f"{_verdict(overhead < ROUTING_TARGET_US)}); a page makes one or two reads.",
        "",
        "| position after a commit | µs per transaction (median of rounds) |",
        "|---|--:|",
    ]
    lines += [f"| {name} | {us:.0f} |" for name, us in position_us.items()]
    lines += [
        "",
        "| page | replica | req/s | p50 ms | p99 ms | errors | primary CPU ms/request | "
        "replica CPU ms/request | statements on the primary / replica | share on the replica |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in replica:
        wrk = run.measured.report
        lines.append(
            f"| {run.page} | {'one' if run.replica else 'none'} | {wrk.requests_per_second:,.0f} | "
            f"{wrk.p50_ms:.1f} | {wrk.p99_ms:.1f} | {wrk.errors} | {run.primary_cpu_ms:.2f} | "
            f"{run.replica_cpu_ms:.2f} | {run.primary_statements:,} / {run.replica_statements:,} | "
            f"{run.share:.0%} |"
        )
    lines.append("")
    for page in dict.fromkeys(run.page for run in replica):
        without, with_ = (_the(replica, page=page, replica=w) for w in (False, True))
        if with_.primary_cpu_ms < UNMEASURED_MS:
            down = without.primary_cpu_ms / UNMEASURED_MS  # at least
            change = (
                f"from {without.primary_cpu_ms:.2f} ms to less than {UNMEASURED_MS} ms, down "
                f"more than **{down:.0f}x**"
            )
        else:
            down = without.primary_cpu_ms / with_.primary_cpu_ms
            change = f"down **{down:.1f}x**"
        lines.append(
            f"- {page}: with the replica, {with_.share:.0%} of the statements run on it "
            f"(target ≥ 90%: {_verdict(with_.share >= 0.9)}); the primary's CPU per request "
            f"{change} (target ≥ 3x: {_verdict(down >= 3)})"
        )
    lines.append(
        "- The anonymous public page is cached whole in the shared cache, whose tables are "
        "UNLOGGED and live on the primary only (a replica has none of them): with the cache on, "
        "its requests make no timeline read to route, and what the primary runs is the cache's "
        "lookups. The row with the shared cache off shows where its timeline reads go."
    )
    lines += [
        "",
        f"| page | {options.INSTANCES} instances | req/s | p50 ms | p99 ms | errors | "
        "app CPU ms/request | budget used | peak server connections (LISTEN apart) | LISTEN |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in pooler:
        wrk, measured = run.measured.report, run.measured
        used = "unbudgeted" if measured.budget_used is None else f"{measured.budget_used:.0%}"
        lines.append(
            f"| {run.page} | {run.setup} | {wrk.requests_per_second:,.0f} | {wrk.p50_ms:.1f} | "
            f"{wrk.p99_ms:.1f} | {wrk.errors} | {measured.app_ms_per_request:.2f} | {used} | "
            f"{run.pooled} | {run.listening} |"
        )
    lines.append("")
    for page in dict.fromkeys(run.page for run in pooler):
        direct, pooled, uncached = (
            _the(pooler, page=page, setup=s) for s in (DIRECT, POOLED, UNCACHED)
        )
        rate = _rate(pooled) / _rate(direct)
        cost = 1 - _rate(uncached) / _rate(direct)
        lines.append(
            f"- {page}: through PgBouncer, {rate:.0%} of direct's requests/s (target within 15%: "
            f"{_verdict(rate >= 0.85)}), at most {pooled.pooled} server connections for "
            f"{options.INSTANCES} x 10 pooled client connections (PgBouncer's pool: {POOL_SIZE}; "
            f"target at most that: {_verdict(pooled.pooled <= POOL_SIZE)}); the statement cache "
            f"off costs {cost:.0%} of direct's requests/s"
        )
    return "\n".join(lines) + "\n"
