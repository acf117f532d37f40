"""The scale-out section: ratios within rounds, their checks, and where the section is written."""

from __future__ import annotations

import report
import scale_report
import wrk
from cgroups import Counters
from measure import Measurement
from scale_report import BASE, HOME, PUBLIC, Run, Setup

ONE, TWO = Setup("nginx", 1), Setup("nginx", 2)


def measured(rate: float) -> Measurement:
    report = wrk.Report(int(rate * 5), rate, 30.0, 60.0, 0, 0)
    return Measurement(report, 5.0, 0.3, [Counters(1.5, 500, 450, 2.0)], {}, 0.4)


def runs_of(rates: dict[tuple[int, str, Setup], float]) -> list[Run]:
    return [Run(n, page, setup, measured(rate)) for (n, page, setup), rate in rates.items()]


def test_ratios_are_taken_within_each_round():
    runs = runs_of({(1, HOME, ONE): 100, (1, HOME, TWO): 190,
                    (2, HOME, ONE): 50, (2, HOME, TWO): 99})  # fmt: skip
    ratio = scale_report.ratio(runs, (HOME, TWO), (HOME, ONE))
    assert ratio.within == [1.9, 1.98]
    assert str(ratio) == "1.94 | 1.90-1.98"


def test_a_round_above_n_times_one_instance_fails_its_check():
    rates = {}
    for n, two in ((1, 210), (2, 190), (3, 195)):
        for page in (HOME, PUBLIC, BASE):
            rates[(n, page, ONE)] = 100
            rates[(n, page, TWO)] = two if page == PUBLIC else 180
    lines = scale_report.ratios(runs_of(rates)).splitlines()
    public = next(line for line in lines if line.startswith(f"| {PUBLIC}: nginx x2"))
    assert "above 2 in 1/3 rounds" in public
    home = next(line for line in lines if line.startswith(f"| {HOME}: nginx x2"))
    assert home.endswith("| >= 1.9 | ✓ |")


def test_a_section_replaces_only_its_own_heading(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(
        "# Benchmarks\n\n## Scale-out\n\nold figures\n\n## Scale-out, run to run\n\nkept\n"
    )
    report.write_section(path, "## Scale-out\n\nnew figures\n")
    assert path.read_text() == (
        "# Benchmarks\n\n## Scale-out\n\nnew figures\n\n## Scale-out, run to run\n\nkept\n"
    )
