"""The sections bench/scale.py measures after its scale-out table, each returned as markdown:
latency at a constant rate below the budgeted saturation rate, one instance's memory over many
requests, and how the home page's cost grows with the number followed and the posts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import growth
import growth_report
import load_report
import memory
import openloop
import procstat
import stack
from measure import Instance
from scale_report import HOME, Run, Setup


@dataclass(frozen=True)
class Fleet:
    """The scale-out table's first instance of ours, measured alone in these sections."""

    server: stack.Server
    instance: Instance
    cookie: str  # the demo account of the scale-out table's home rows


def saturation_rate(runs: list[Run]) -> float:
    """The median over the rounds of one budgeted instance's home rate, directly (or, with no
    budgets, unbudgeted)."""
    direct = [r for r in runs if r.page == HOME and r.setup.target == "direct"]
    budgeted = [r for r in direct if r.setup == Setup("direct", 1)] or direct
    return statistics.median(r.measurement.report.requests_per_second for r in budgeted)


def latency(fleet: Fleet, runs: list[Run], budget: float | None, seconds: float) -> str:
    if fleet.instance.group is not None:
        fleet.instance.group.limit(budget)
    saturation = saturation_rate(runs)
    rate = saturation * load_report.LOAD_SHARE
    stack.log(f"latency: {rate:.0f} req/s offered for {seconds:g} s ({saturation:.0f} saturate)")
    result = openloop.offer("127.0.0.1", fleet.server.port, "/", rate, seconds, fleet.cookie)
    stack.log(load_report.latency_verdict(result))
    header = (
        f"Home page, {seconds:g} s at a constant {rate:,.0f} requests/s: "
        f"{load_report.LOAD_SHARE:.0%} of {saturation:,.0f}, what one instance "
        + (f"within {budget:g} of a core" if budget is not None else "without a budget")
        + " served under wrk in the scale-out table of the same run."
    )
    return load_report.latency_section(result, saturation, budget, header)


def memory_curve(fleet: Fleet, total: int, every: int, connections: int) -> str:
    if fleet.instance.group is not None:
        fleet.instance.group.limit(None)
    stack.log(f"memory: {total:,} requests, RSS every {every:,} ...")
    samples, report = memory.curve(
        fleet.server.url + "/", connections, fleet.cookie, fleet.instance.pid, total, every
    )
    for sample in samples:
        stack.log(f"memory: {sample.requests:,} requests, RSS {sample.rss_mb:.1f} MB")
    header = (
        f"Home page, {total:,} requests over {connections} connections, RSS every {every:,}: "
        f"{report.requests_per_second:,.0f} requests/s, p99 {report.p99_ms:.1f} ms, "
        f"{report.errors} errors."
    )
    return load_report.memory_section(samples, header)


def cost_growth(
    sizes: growth.GrowthSizes,
    databases: dict[int, str],
    replica: tuple[str, int | None] | None,
    postmaster: int | None,
    started: list,
    scratch: Path,
) -> str:
    """replica: its server's URL and postmaster's pid, or None where none could be made."""
    replica_url = replica[0] if replica else None
    routes = growth.start_routes(started, databases, replica_url, scratch)
    servers = {"postgres": postmaster} if postmaster else {}
    if replica and replica[1]:
        servers["replica"] = replica[1]
    runs = growth.run_rounds(sizes, routes, servers)
    plans = growth.explain_all(routes)
    posts = " and ".join(f"{n:,}" for n in databases)
    header = (
        f"{sizes.users:,} users and {sizes.follows:,} follows, with {posts} posts; readers "
        f"following {', '.join(f'{n:,}' for n in growth.READERS)} accounts. wrk -t2 with "
        f"{sizes.connections} connections, {sizes.seconds} s per run after a warm-up; every "
        f"run made {sizes.rounds} time{'s' if sizes.rounds != 1 else ''}, all taking turns. "
        + (
            "The replica is `microblog db --replica` of the embedded server."
            if replica
            else "No replica: one is made only beside the embedded server (no --database-url)."
        )
    )
    return growth_report.section(runs, plans, header)


def replica_beside(started: list, folder: Path) -> tuple[str, int | None]:
    """A streaming replica of the embedded server in `folder`: its URL and postmaster."""
    url = stack.embedded_replica(started, folder)
    return url, procstat.postmaster_pid(str(folder / "replica" / "pgdata"))
