"""When the measurement, not the app, is speaking: the rules every budgeted run is held to.

A budgeted instance is the bottleneck only if it used (nearly) all of its budget and its quota
throttled it in most periods; the machine is not the bottleneck only if some of its CPU time
stayed idle. And a budget must cost a request no more and no less CPU than running without
one: a quota hands out CPU time in slices, and if that changes what a request costs, or lets
N instances serve more than N times what one did, the ratios measure the slicing.
"""

from __future__ import annotations

import measure

# An instance that used less of its budget than this was waiting for something else.
BUDGET_USED = 0.90
# ... and one throttled in fewer of its periods than this was not held back all along.
THROTTLED = 0.50
# Below this idle share of the machine's CPU time, the instances compete for cores.
IDLE = 0.20
# A budgeted request whose CPU differs more than this from an unbudgeted one's is distorted.
COST_DRIFT = 0.10


def app_bound(budget_used: float, throttled_share: float) -> bool:
    return budget_used >= BUDGET_USED and throttled_share >= THROTTLED


def machine_saturated(idle_share: float) -> bool:
    return idle_share < IDLE


def cost_drift(ms_per_request: float, unbudgeted_ms: float) -> float:
    """How much more (or, below 0, less) CPU a request cost than without a budget."""
    return ms_per_request / unbudgeted_ms - 1


def distorted_cost(ms_per_request: float, unbudgeted_ms: float) -> bool:
    return abs(cost_drift(ms_per_request, unbudgeted_ms)) > COST_DRIFT


def superlinear(ratio: float, instances: int) -> bool:
    """N instances cannot honestly serve more than N times what one served."""
    return ratio > instances


def flags(run: measure.Measurement, unbudgeted_ms: float | None) -> dict[str, str]:
    """What is wrong with a run's measurement: {what: by how much}; empty when nothing is."""
    found = {}
    if run.report.errors:
        found["errors"] = str(run.report.errors)
    if run.budget is not None and not app_bound(run.budget_used, run.throttled_share):
        found["not app-bound"] = (
            f"{run.budget_used:.0%} of the budget used, "
            f"throttled in {run.throttled_share:.0%} of periods"
        )
    if machine_saturated(run.idle_share):
        found["machine saturated"] = f"{run.idle_share:.0%} idle"
    if unbudgeted_ms is not None and distorted_cost(run.app_ms_per_request, unbudgeted_ms):
        drift = cost_drift(run.app_ms_per_request, unbudgeted_ms)
        found["CPU per request off"] = f"{drift:+.0%} from unbudgeted"
    return found
