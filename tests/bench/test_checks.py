"""When the measurement, not the app, is speaking: the rules, and what a run's counters say."""

from __future__ import annotations

import checks
import pytest
import wrk
from cgroups import Counters
from measure import Measurement

REPORT = wrk.Report(requests=1000, requests_per_second=200.0, p50_ms=30.0, p99_ms=60.0,
                    non_2xx_3xx=0, socket_errors=0)  # fmt: skip


def run(instances: list[Counters], *, budget=0.3, idle=0.4, seconds=5.0, report=REPORT):
    return Measurement(report=report, seconds=seconds, budget=budget, instances=instances,
                       cores={}, idle_share=idle)  # fmt: skip


def held(usage: float = 1.5, periods: int = 500, throttled: int = 450) -> Counters:
    return Counters(usage, periods, throttled, 2.0)


@pytest.mark.parametrize(
    ("used", "throttled", "bound"),
    [(0.95, 0.9, True), (0.90, 0.5, True), (0.85, 0.9, False), (0.99, 0.3, False)],
)
def test_an_instance_is_the_bottleneck_only_if_it_used_its_budget_and_was_held_back(
    used, throttled, bound
):
    assert checks.app_bound(used, throttled) is bound


def test_a_machine_without_idle_time_is_saturated():
    assert checks.machine_saturated(0.05)
    assert not checks.machine_saturated(0.35)


@pytest.mark.parametrize(("ms", "distorted"), [(1.12, True), (0.89, True), (1.09, False),
                                               (0.95, False)])  # fmt: skip
def test_a_cost_more_than_a_tenth_off_the_unbudgeted_one_is_distorted(ms, distorted):
    assert checks.distorted_cost(ms, 1.0) is distorted


def test_more_than_n_times_one_instance_is_superlinear():
    assert checks.superlinear(2.05, 2)
    assert not checks.superlinear(1.95, 2)
    assert not checks.superlinear(2.9, 3)


def test_measurement_takes_the_least_used_budget_and_all_periods_together():
    measured = run([held(usage=1.5, periods=500, throttled=450),
                    held(usage=1.2, periods=500, throttled=250)])  # fmt: skip
    assert measured.budget_used == pytest.approx(1.2 / 1.5)
    assert measured.throttled_share == pytest.approx(0.7)
    assert measured.app_ms_per_request == pytest.approx(2.7)


def test_a_clean_budgeted_run_has_no_flags():
    assert checks.flags(run([held()]), unbudgeted_ms=1.45) == {}


def test_every_distortion_of_a_run_is_named():
    report = wrk.Report(1000, 200.0, 30.0, 60.0, non_2xx_3xx=2, socket_errors=1)
    found = checks.flags(run([held(usage=1.0, throttled=100)], idle=0.1, report=report), 1.5)
    assert set(found) == {"errors", "not app-bound", "machine saturated", "CPU per request off"}
    assert found["CPU per request off"] == "-33% from unbudgeted"


def test_an_unbudgeted_run_is_not_asked_to_be_throttled():
    assert checks.flags(run([Counters(5.0, 0, 0, 0.0)], budget=None), None) == {}
