"""The results of bench/scale.py: one line per run as it is made, and the "Scale-out" section of
docs/benchmarks.md (the table of each run's median round, the ratios within rounds, the checks).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from dataclasses import dataclass

import checks
from measure import Measurement

SECTION = "## Scale-out"
HOME, PUBLIC, BASE = "home (logged in)", "public (anonymous)", "baseline: 20 rows"
# What N instances must serve together, as a multiple of one; and home beside the baseline.
SCALING_TARGETS = {2: 1.9, 3: 2.8}
HOME_TARGET = 0.85


@dataclass(frozen=True)
class Setup:
    target: str  # "direct" or "nginx"
    instances: int
    budgeted: bool = True

    def __str__(self) -> str:
        return f"{self.target} x{self.instances}" + ("" if self.budgeted else ", unbudgeted")


@dataclass(frozen=True)
class Run:
    round: int
    page: str
    setup: Setup
    measurement: Measurement


def unbudgeted_ms(runs: list[Run], run: Run) -> float | None:
    """The CPU per request of the same page's unbudgeted run in the same round."""
    if run.measurement.budget is None:
        return None
    for other in runs:
        if (other.round, other.page) == (run.round, run.page) and not other.setup.budgeted:
            return other.measurement.app_ms_per_request
    return None


def describe(run: Run, reference_ms: float | None) -> str:
    """One run in a line, with what its counters say of it."""
    m = run.measurement
    words = [
        f"round {run.round}: {run.page}, {run.setup}: {m.report.requests_per_second:,.0f} req/s, "
        f"p99 {m.report.p99_ms:.0f} ms, {m.app_ms_per_request:.2f} ms of app CPU per request"
    ]
    if m.budget is not None:
        words.append(
            f"{m.budget_used:.0%} of the budget used, throttled in {m.throttled_share:.0%} "
            "of periods"
        )
    words.append(f"machine {m.idle_share:.0%} idle")
    found = checks.flags(m, reference_ms)
    verdict = "; ".join(f"{what} ({how})" for what, how in found.items())
    if not verdict:
        verdict = "app-bound" if m.budget is not None else "ok"
    return "; ".join(words) + ": " + verdict


def _groups(runs: list[Run]) -> dict[tuple[str, Setup], list[Run]]:
    grouped: dict[tuple[str, Setup], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.page, run.setup), []).append(run)
    return grouped


def _median(same: list[Run]) -> Run:
    return sorted(same, key=lambda r: r.measurement.report.requests_per_second)[len(same) // 2]


def _checks(runs: list[Run], same: list[Run]) -> str:
    """Which checks failed in how many of the rounds of one page and setup."""
    failed = Counter(
        what for r in same for what in checks.flags(r.measurement, unbudgeted_ms(runs, r))
    )
    if not failed:
        return "✓"
    return "; ".join(f"{what} in {n}/{len(same)}" for what, n in failed.items())


def table(runs: list[Run]) -> str:
    lines = [
        "| page | path | instances | budget (cores each) | req/s | p50 ms | p99 ms | errors | "
        "app CPU per request (ms) | vs unbudgeted | budget used / periods throttled | "
        "machine idle | CPU cores: wrk / nginx / app / postgres / others | checks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for (page, setup), same in _groups(runs).items():
        run = _median(same)
        m, reference = run.measurement, unbudgeted_ms(runs, run)
        drift = "" if reference is None else f"{m.app_ms_per_request / reference - 1:+.0%}"
        used = "" if m.budget is None else f"{m.budget_used:.0%} / {m.throttled_share:.0%}"
        cores = " / ".join(
            f"{m.cores.get(k, 0):.2f}" for k in ("wrk", "nginx", "app", "postgres", "others")
        )
        budget = "none" if m.budget is None else f"{m.budget:g}"
        where = setup.target + ("" if setup.budgeted else ", unbudgeted")
        lines.append(
            f"| {page} | {where} | {setup.instances} | {budget} | "
            f"{m.report.requests_per_second:,.0f} | {m.report.p50_ms:.1f} | "
            f"{m.report.p99_ms:.1f} | {m.report.errors} | {m.app_ms_per_request:.2f} | {drift} | "
            f"{used} | {m.idle_share:.0%} | {cores} | {_checks(runs, same)} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Ratio:
    within: list[float]  # one for each round

    @property
    def median(self) -> float:
        return statistics.median(self.within)

    def __str__(self) -> str:
        return f"{self.median:.2f} | {min(self.within):.2f}-{max(self.within):.2f}"


def ratio(runs: list[Run], over: tuple[str, Setup], under: tuple[str, Setup]) -> Ratio:
    """The ratio of two runs' rates within each round."""
    rates = {(r.round, r.page, r.setup): r.measurement.report.requests_per_second for r in runs}
    rounds = sorted({r.round for r in runs})
    return Ratio([rates[(n, *over)] / rates[(n, *under)] for n in rounds])


def ratios(runs: list[Run]) -> str:
    setups = list(dict.fromkeys(r.setup for r in runs))
    lines = ["| ratio | median | rounds' range | target | check |", "|---|---:|---:|---|---|"]
    for setup in setups:
        value = ratio(runs, (HOME, setup), (BASE, setup))
        target = f">= {HOME_TARGET}" if setup.budgeted else ""
        lines.append(f"| home / baseline, {setup} | {value} | {target} | |")
    one = next(s for s in setups if s.target == "nginx" and s.instances == 1)
    for page in (HOME, PUBLIC, BASE):
        for setup in (s for s in setups if s.target == "nginx" and s.instances > 1):
            value = ratio(runs, (page, setup), (page, one))
            over = sum(checks.superlinear(x, setup.instances) for x in value.within)
            check = "✓"
            if over:
                check = (
                    f"**above {setup.instances} in {over}/{len(value.within)} rounds: "
                    "the measurement is speaking**"
                )
            target = SCALING_TARGETS.get(setup.instances)
            lines.append(f"| {page}: {setup} / {one} | {value} | >= {target} | {check} |")
    return "\n".join(lines)


def ceilings(runs: list[Run]) -> str:
    """Without budgets: how far N instances can go on cores the first left idle."""
    lines = []
    for (page, setup), same in _groups(runs).items():
        if setup.target == "nginx" and setup.instances == 1:
            cores = _median(same).measurement.cores
            used = sum(v for k, v in cores.items() if k != "others")
            lines.append(f"{page} {(os.cpu_count() or 1) / used:.2f}")
    return (
        "Without budgets every instance shares the cores with PostgreSQL, nginx and wrk, so a "
        "second one can only use what the first left idle: this machine's ceiling for "
        "xN / x1 (cores divided by the cores the one-instance run used) is "
        + ", ".join(lines)
        + "."
    )


READING = """How to read these numbers:

- Every instance runs in its own cgroup with a CPU quota (the budget column): a slice of a
  core it cannot exceed, whatever else runs on the machine, as one core per instance would
  be on a bigger machine. Its rate is then its budget divided by its CPU per request.
- A run counts only if its counters say the instance, not the machine or the load, was the
  bottleneck: each instance used nearly all its budget and was throttled in most periods
  (budget used / periods throttled), and part of the machine stayed idle (machine idle).
  The checks column names any run of any round that failed one, and a row with failures is
  not the app speaking.
- *direct, unbudgeted* is one instance without a quota, measured in the same round: what a
  request costs the app when nothing slices its time. A budget must not change that cost:
  *vs unbudgeted* shows by how much it did, and more than 10% either way fails the check.
- N instances cannot serve more than N times what one served; a ratio above N fails its
  check, as the quota's slicing, not the app, made it.
- A budgeted run's latency includes the quota's waits: an instance that used up its slice
  waits for the next period, up to (1 - budget) x period (120 ms at 0.2 of a core in
  periods of 150 ms). Its p50 and p99 say how long wrk's queue was, not how fast a page is
  served.
- App CPU per request is the instances' CPU time (their cgroups' own usage counters, else
  /proc) over the requests wrk completed. The CPU cores columns are cores used on average
  during the run; *others* is what the machine did besides the benchmark's parts.
- The baseline does the least a page can: one query for 20 rows and a tiny template. The home
  timeline does what a real page must: it checks the signed session against the user's row
  (kept in the process's memory while PostgreSQL's notifications say it is current, so a
  password change still logs other sessions out everywhere), runs the timeline query
  (which merges the newest posts of everyone followed), takes the 20 post cards from the
  process's memory (the shared cache, and then the templates, only for cards it has not seen),
  and sends a page several times larger (navigation, a compose form, a CSRF token, like and
  delete forms on every post), with security headers and a request id (the access log is off
  here, as the baseline logs nothing). The public timeline for anonymous visitors is cached
  whole (one version check, one lookup).
- The instances run with `RATE_LIMITS=off`, as the baseline has no limits and all of wrk's
  requests come from one address. With limits on, every page also takes one statement on the
  cache's pool to check and count the visitor's global limit (see "Cache and rate limits")."""


def section(runs: list[Run], header: str) -> str:
    parts = [SECTION, header, table(runs), ratios(runs)]
    if all(r.measurement.budget is None for r in runs):
        parts.append(ceilings(runs))
    return "\n\n".join([*parts, READING])
