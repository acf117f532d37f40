"""The results of bench/scale.py's long runs: a web instance's memory over many requests, and
latency at a constant rate below saturation, as two sections of docs/benchmarks.md."""

from __future__ import annotations

from memory import Sample
from openloop import Result

MEMORY_SECTION = "## Scale-out: memory"
LATENCY_SECTION = "## Scale-out: latency under load"
RSS_TARGET_MB = 100.0
# Steady state: over the second half of the run, resident memory grew less than this share.
STEADY_GROWTH = 0.05
LOAD_SHARE = 0.70  # of the budgeted saturation rate
P99_TARGET_MS = 50.0


def steady_growth(samples: list[Sample]) -> float:
    """How much RSS grew over the second half of the requests, as a share of where it was."""
    last = samples[-1]
    half = min(samples, key=lambda s: abs(s.requests - last.requests / 2))
    return last.rss_mb / half.rss_mb - 1


def memory_verdict(samples: list[Sample]) -> str:
    last, growth = samples[-1], steady_growth(samples)
    steady = growth < STEADY_GROWTH
    met = steady and last.rss_mb < RSS_TARGET_MB
    words = "met" if met else "**not met**"
    if last.rss_mb >= RSS_TARGET_MB:
        words += f", {last.rss_mb - RSS_TARGET_MB:.1f} MB over"
    if not steady:
        words += ", still growing"
    return (
        f"RSS after {last.requests:,} requests: **{last.rss_mb:.1f} MB** (target under "
        f"{RSS_TARGET_MB:g} MB at steady state: {words}); over the second half of the run it "
        f"grew by {growth:+.1%} (steady: under {STEADY_GROWTH:.0%})."
    )


def memory_section(samples: list[Sample], header: str) -> str:
    lines = ["| requests answered | RSS (MB) |", "|---:|---:|"]
    lines += [f"| {s.requests:,} | {s.rss_mb:.1f} |" for s in samples]
    notes = (
        "Method: one instance without a CPU budget, directly, under wrk's closed loop on the "
        "home page of the same demo account as the scale-out table. A Lua script makes wrk "
        "print a line for every 100 answers of each of its threads; at each sampling point the "
        "instance's VmRSS (/proc/<pid>/status: its resident memory, shared pages included) is "
        "read, and once the total is answered wrk is stopped. The first row is before the "
        "first request, after start-up."
    )
    return "\n\n".join([MEMORY_SECTION, header, "\n".join(lines), memory_verdict(samples), notes])


def latency_verdict(result: Result) -> str:
    p99 = result.percentile(0.99)
    met = p99 < P99_TARGET_MS and not result.errors
    words = "met" if met else "**not met**"
    if p99 >= P99_TARGET_MS:
        words += f", {p99 - P99_TARGET_MS:.1f} ms over"
    if result.errors:
        words += f", {result.errors} errors"
    return f"p99 **{p99:.1f} ms** (target under {P99_TARGET_MS:g} ms: {words})."


def latency_section(result: Result, saturation: float, budget: float | None, header: str) -> str:
    served = "within its budget" if budget is not None else "without a budget (none could be made)"
    lines = [
        "| saturation (req/s) | offered (req/s) | answered (req/s) | p50 ms | p90 ms | p99 ms | "
        "max ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {saturation:,.0f} | {result.offered_rate:,.0f} | {result.answered_rate:,.0f} | "
        f"{result.percentile(0.5):.1f} | {result.percentile(0.9):.1f} | "
        f"{result.percentile(0.99):.1f} | {max(result.latencies_ms):.1f} | {result.errors} |",
    ]
    notes = (
        f"Method: one instance {served}, directly, offered {LOAD_SHARE:.0%} of the rate it "
        "saturated at in the scale-out table of the same run (its *direct x1* home row, the "
        "median of the rounds), at a constant rate by bench/openloop.py rather than wrk: wrk is "
        "closed-loop and sends less while the server stalls, hiding the stall from the requests "
        "that should have gone out meanwhile (coordinated omission). Request i is due at "
        "start + i / rate whatever came before; it goes out on one of 32 keep-alive "
        "connections (waiting for a free one counts), and its latency runs from its due time "
        "to the last byte of its answer, so a generator that falls behind only makes the "
        "figures worse. A budgeted instance that used up its slice of a period waits for the "
        'next one (docs/benchmarks.md, "Scale-out: method"): at 70% load such waits are '
        "rarer than at saturation, but they are part of what p99 measures."
    )
    return "\n\n".join([LATENCY_SECTION, header, "\n".join(lines), latency_verdict(result), notes])
