"""What bench/events.py counts as lost, repeated, late and out of order, and how it reports it."""

from __future__ import annotations

from types import SimpleNamespace

import wrk
from events_report import Results, section

HOME = wrk.Report(1000, 100.0, 50.0, 120.0, 0, 0)
DATA = SimpleNamespace(users=10, posts=10, follows=10)
LOAD = SimpleNamespace(
    data=DATA, streams=2, rate=1.0, seconds=2.0, wrk_connections=1, wrk_seconds=1
)


def results(received: list[list[tuple[int, float]]], **overrides) -> Results:
    fields = {
        "load": LOAD,
        "posted": 2,
        "written": {10: 100.0, 11: 101.0},
        "received": received,
        "failures": [],
        "rss_per_stream": 20_000.0,
        "app_cpu_seconds": 0.004,
        "without": (HOME, wrk.Report(1000, 110.0, 45.0, 110.0, 0, 0)),
        "with_streams": wrk.Report(1000, 94.5, 52.0, 130.0, 0, 0),
        **overrides,
    }
    return Results(**fields)


def test_every_due_delivery_missing_is_lost_and_every_second_copy_repeated():
    measured = results([[(10, 100.010), (10, 100.5), (11, 101.030)], [(11, 101.2)]])
    assert measured.lost == 1  # the second stream never got event 10
    assert measured.repeated == 1
    assert measured.out_of_order == 1  # the first stream got 10 twice: not in increasing order
    assert measured.deliveries == 4


def test_latency_is_from_the_event_row_to_arrival_and_costs_are_per_stream_and_delivery():
    measured = results([[(10, 100.010), (11, 101.030)], [(10, 100.020), (11, 101.040)]])
    assert [round(ms) for ms in measured.latencies_ms] == [10, 30, 20, 40]
    assert measured.lost == measured.repeated == measured.out_of_order == 0
    assert measured.mb_per_1000 == 20.0
    assert measured.cpu_us_per_delivery == 1000.0
    assert measured.home_ratio == 0.9  # 94.5 of the mean of 100 and 110


def test_the_section_says_which_targets_are_met():
    text = section(results([[(10, 100.010), (11, 101.300)], [(11, 101.2)]]))
    assert text.startswith("## Live updates\n")
    assert "| commit to event received, p50 | 200.0 ms | < 50 ms: **not met** |" in text
    assert "| 1 | 0: **not met** |" in text  # one event lost
    assert "| 20.0 MB | < 50 MB: met |" in text
    assert "| 0.90 | ≥ 0.9: met |" in text
