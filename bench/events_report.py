"""The results of bench/events.py, and the "Live updates" section of docs/benchmarks.md."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import report
import wrk

SECTION = "## Live updates"
TARGET_P50_MS = 50.0
TARGET_P99_MS = 250.0
TARGET_MB_PER_1000 = 50.0
TARGET_HOME_RATIO = 0.9  # requests/s with the streams open, of without


@dataclass(frozen=True)
class Results:
    load: Any  # events.Load
    posted: int
    written: dict[int, float]  # the posts' event ids, and when each row was written (epoch s)
    received: list[list[tuple[int, float]]]  # each stream's (event id, arrival), in order
    failures: list[str]  # streams that ended on their own, and why
    rss_per_stream: float  # bytes, both instances together
    app_cpu_seconds: float  # both instances, while the writers posted and the events drained
    without: tuple[wrk.Report, wrk.Report]  # home timeline before the streams, and after
    with_streams: wrk.Report  # ... with every stream open and idle
    readers: int = 0
    writers: int = 0
    load_average: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    elapsed: float = 0.0
    command: str = ""

    @property
    def latencies_ms(self) -> list[float]:
        return [
            (arrived - self.written[event_id]) * 1000
            for stream in self.received
            for event_id, arrived in stream
            if event_id in self.written
        ]

    @property
    def deliveries(self) -> int:
        return sum(len(stream) for stream in self.received)

    @property
    def lost(self) -> int:
        """Deliveries that should have been made and were not."""
        expected = set(self.written)
        return sum(len(expected - {event_id for event_id, _ in s}) for s in self.received)

    @property
    def repeated(self) -> int:
        return sum(len(s) - len({event_id for event_id, _ in s}) for s in self.received)

    @property
    def out_of_order(self) -> int:
        return sum(any(a[0] >= b[0] for a, b in pairwise(s)) for s in self.received)

    @property
    def mb_per_1000(self) -> float:
        return self.rss_per_stream * 1000 / 1e6

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.app_cpu_seconds * 1e6 / max(self.deliveries, 1)

    @property
    def home_ratio(self) -> float:
        without = sum(r.requests_per_second for r in self.without) / len(self.without)
        return self.with_streams.requests_per_second / without


def _met(met: bool) -> str:
    return "met" if met else "**not met**"


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    return found.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def _load(average: tuple[float, ...]) -> str:
    return " / ".join(f"{value:.2f}" for value in average)


def section(results: Results) -> str:
    load, latencies = results.load, results.latencies_ms
    p50, p99 = report.percentile(latencies, 0.5), report.percentile(latencies, 0.99)
    before, after = results.without
    home_rows = [
        ("without streams, before they open", before),
        (f"with {load.streams:,} idle streams open", results.with_streams),
        ("without streams, after they close", after),
    ]
    lines = [
        SECTION,
        "",
        f"`{results.command}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')} "
        f"UTC, microblog at commit {_commit()}: {load.data.users:,} users, "
        f"{load.data.posts:,} posts, {load.data.follows:,} follows seeded. "
        f"{load.streams:,} streams of the home timeline through the repository's nginx.conf "
        f"to two `web` instances, held by {results.readers} readers who follow "
        f"{results.writers} writers; the writers post {load.rate:g} times a second for "
        f"{load.seconds:g} s on a third instance. The machine's load average (1, 5, 15 min) "
        f"before the run: {_load(results.load_average[0])}; after it: "
        f"{_load(results.load_average[1])}. The whole run took {results.elapsed:.0f} s.",
        "",
        "| measure | result | target |",
        "|---|--:|---|",
        f"| commit to event received, p50 | {p50:.1f} ms | < {TARGET_P50_MS:g} ms: "
        f"{_met(p50 < TARGET_P50_MS)} |",
        f"| commit to event received, p99 | {p99:.1f} ms | < {TARGET_P99_MS:g} ms: "
        f"{_met(p99 < TARGET_P99_MS)} |",
        f"| slowest delivery | {max(latencies, default=0):.1f} ms | |",
        f"| events lost (of {len(results.written) * load.streams:,} deliveries due) | "
        f"{results.lost} | 0: {_met(results.lost == 0)} |",
        f"| events repeated; streams out of order; streams that ended | {results.repeated}; "
        f"{results.out_of_order}; {len(results.failures)} | 0 |",
        f"| memory per 1,000 streams (both instances' RSS) | {results.mb_per_1000:.1f} MB | "
        f"< {TARGET_MB_PER_1000:g} MB: {_met(results.mb_per_1000 < TARGET_MB_PER_1000)} |",
        f"| instances' CPU per delivered event | {results.cpu_us_per_delivery:.0f} µs | |",
        f"| home timeline req/s with the streams open, of without | "
        f"{results.home_ratio:.2f} | ≥ {TARGET_HOME_RATIO:g}: "
        f"{_met(results.home_ratio >= TARGET_HOME_RATIO)} |",
        "",
        "| home timeline through nginx | req/s | p50 ms | p99 ms | errors |",
        "|---|--:|--:|--:|--:|",
        *(
            f"| {name} | {r.requests_per_second:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.errors} |"
            for name, r in home_rows
        ),
        "",
        *METHOD,
        "",
    ]
    return "\n".join(lines)


METHOD = [
    "Method:",
    "",
    "- *Latency*: from the `created_at` of the post's row in `events` (`clock_timestamp()` "
    "in the writing transaction, just before its commit, so the figure includes the commit "
    "itself) to the moment the benchmark's client read the event from its socket, for every "
    "post on every stream; one machine, one clock.",
    "- *Lost*: every stream's reader follows every writer, so each stream must receive every "
    "post event written during the run, once and in id order; what has not arrived "
    "15 s after the last post counts as lost.",
    "- *Memory*: the two instances' resident memory just before the streams open and 2 s "
    "after the last has, divided by the streams: what a stream costs its process, nginx's "
    "connections not included.",
    "- *CPU*: the two instances' user and system time from the first post until every event "
    "had arrived, divided by the deliveries (heartbeats and the idle streams' upkeep "
    "included; the writes themselves are made on the third instance and not counted).",
    "- *Home timeline*: wrk through nginx, logged in as a reader who follows an ordinary "
    "number of people, with the same connections and length each time; *without* is the mean "
    "of the runs before the streams open and after they close.",
    "- The client (bench/streams.py, plain sockets, HTTP/1.0 so the body comes as sent), "
    "nginx, PostgreSQL and the three instances share the machine's cores.",
]
