"""Histograms with many label sets, written out in the text format at a small cost.

prometheus_client's Histogram takes a lock per observation and, on every scrape, builds and
escapes every bucket's labels again: with one series per route, method and status class, a
scrape of a busy instance cost some 30 ms (bench/metrics.py). Here each series keeps plain
counts, and the text of its label sets is made once, when the series first appears; a scrape
only writes numbers. Every observation and every scrape happens on the process's one event
loop, so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.utils import floatToGoString

# The OpenTelemetry semantic conventions' buckets for HTTP server durations, in seconds.
OTEL_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def label_value(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class Series:
    """One label set's counts: per bucket (not cumulative), and the sum of what was observed."""

    __slots__ = ("_bounds", "_counts", "_lines", "sum")

    def __init__(self, bounds: tuple[float, ...], lines: tuple[str, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self._lines = lines  # each bucket's line up to its number, then _sum's and _count's
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le, "<=").
        self._counts[bisect_left(self._bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self._counts)

    def lines(self) -> Iterator[str]:
        total = 0
        for prefix, count in zip(self._lines, self._counts, strict=False):
            total += count
            yield f"{prefix}{total}\n"
        yield f"{self._lines[-2]}{floatToGoString(self.sum)}\n"
        yield f"{self._lines[-1]}{total}\n"


class Histogram:
    """A histogram family: `labels(...)` finds or makes a series, `text()` writes them all."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = tuple(float(bound) for bound in buckets)
        self._series: dict[tuple[str, ...], Series] = {}

    def labels(self, *values: str) -> Series:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = Series(self._bounds, self._lines_of(values))
        return series

    def _lines_of(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        pairs = [
            f'{name}="{label_value(v)}"' for name, v in zip(self.labelnames, values, strict=True)
        ]
        labels = ",".join(pairs)
        joined = f"{labels}," if labels else ""
        les = [*(floatToGoString(bound) for bound in self._bounds), "+Inf"]
        buckets = tuple(f'{self.name}_bucket{{{joined}le="{le}"}} ' for le in les)
        around = f"{{{labels}}}" if labels else ""
        return (*buckets, f"{self.name}_sum{around} ", f"{self.name}_count{around} ")

    def series(self) -> dict[tuple[str, ...], Series]:
        return dict(self._series)

    def text(self) -> str:
        """The family in the Prometheus text format (version 0.0.4)."""
        help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out = [f"# HELP {self.name} {help_text}\n", f"# TYPE {self.name} histogram\n"]
        for series in self._series.values():
            out.extend(series.lines())
        return "".join(out)
