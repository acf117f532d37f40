"""The memory and latency sections: the curve's steady state and the targets' verdicts."""

from __future__ import annotations

import load_report
import memory
from memory import Sample
from openloop import Result


def curve(*rss: float) -> list[Sample]:
    return [Sample(n * 10_000, mb) for n, mb in enumerate(rss)]


def test_memory_that_levels_off_under_100_mb_meets_its_target():
    samples = curve(60, 75, 78, 79, 79.5, 80)
    assert 0 < load_report.steady_growth(samples) < 0.05
    verdict = load_report.memory_verdict(samples)
    assert "RSS after 50,000 requests: **80.0 MB**" in verdict
    assert "at steady state: met)" in verdict


def test_memory_still_growing_or_over_100_mb_does_not():
    growing = load_report.memory_verdict(curve(60, 70, 80, 90, 95, 99))
    assert "**not met**, still growing" in growing
    over = load_report.memory_verdict(curve(60, 110, 111, 111, 111, 111))
    assert "**not met**, 11.0 MB over)" in over


def test_the_memory_section_lists_every_sample():
    text = load_report.memory_section(curve(60, 61), "header")
    assert text.startswith("## Scale-out: memory\n\nheader\n\n| requests answered | RSS (MB) |")
    assert "| 0 | 60.0 |\n| 10,000 | 61.0 |" in text


def test_a_p99_over_50_ms_or_any_error_misses_the_latency_target():
    fast = Result(70.0, 10.0, [5.0] * 99 + [40.0], 0)
    assert load_report.latency_verdict(fast) == "p99 **5.0 ms** (target under 50 ms: met)."
    slow = Result(70.0, 10.0, [5.0] * 98 + [80.0, 90.0], 0)
    assert "p99 **80.0 ms** (target under 50 ms: **not met**, 30.0 ms over)" in (
        load_report.latency_verdict(slow)
    )
    failing = Result(70.0, 10.0, [5.0] * 100, 3)
    assert "**not met**, 3 errors" in load_report.latency_verdict(failing)


def test_the_latency_section_shows_the_rates_and_percentiles():
    result = Result(70.0, 10.0, [float(n) for n in range(1, 701)], 0)
    text = load_report.latency_section(result, 100.0, 0.3, "header")
    assert "| 100 | 70 | 70 | 350.0 | 630.0 | 693.0 | 700.0 | 0 |" in text
    assert "within its budget" in text


def test_rss_is_read_from_proc():
    assert memory.parse_rss("Name:\tpython\nVmRSS:\t  51200 kB\n") == 50.0
    assert memory.rss_mb(__import__("os").getpid()) > 1
