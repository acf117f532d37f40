"""The cost-growth section: the home query's plan as EXPLAIN gives it, CPU per request added
up over the app and both servers, and the ratios held to their targets within each round."""

from __future__ import annotations

import growth_report
import wrk
from cgroups import Counters
from growth_report import Explained, GrowthRun
from measure import Measurement

PLAN = [
    {
        "Plan": {
            "Node Type": "Sort",
            "Actual Rows": 21,
            "Actual Loops": 1,
            "Shared Hit Blocks": 140,
            "Shared Read Blocks": 3,
            "Plans": [{"Node Type": "Function Scan", "Actual Rows": 21}],
        },
        "Planning Time": 0.1,
        "Execution Time": 0.84,
    }
]


def test_the_plan_gives_the_top_nodes_buffers_and_rows():
    assert growth_report.parse_explain(PLAN) == Explained(21, 140, 3, 0.84)


def measured(app_ms: float, postgres_ms: float, replica_ms: float = 0.0) -> Measurement:
    """1,000 requests in 5 s with this much CPU each."""
    report = wrk.Report(1_000, 200.0, 10.0, 30.0, 0, 0)
    cores = {"postgres": postgres_ms / 5, "replica": replica_ms / 5}  # ms x 1,000 / 5 s
    return Measurement(report, 5.0, None, [Counters(app_ms, 0, 0, 0.0)], cores, 0.5)


def test_cpu_per_request_adds_the_app_and_both_servers():
    run = GrowthRun(1, 100_000, "replica", 10, 20, measured(2.0, 1.0, 0.5))
    assert round(run.cpu_ms, 6) == 3.5


def runs_and_plans(cpu: dict[tuple[int, int, int], float]):
    """cpu: (round, posts, following) -> app CPU per request, read from the primary."""
    runs = [
        GrowthRun(n, posts, "primary", f, 20, measured(ms, 0.0))
        for (n, posts, f), ms in cpu.items()
    ]
    plans = {(posts, "primary", f): Explained(21, 100 * f, 0, 1.0) for (_, posts, f) in cpu}
    return runs, plans


def test_each_ratio_is_taken_within_rounds_and_says_whether_it_meets_its_target():
    runs, plans = runs_and_plans({
        (1, 100, 10): 2.0, (1, 100, 5000): 3.0, (1, 1000, 10): 2.2, (1, 1000, 5000): 4.5,
        (2, 100, 10): 4.0, (2, 100, 5000): 7.0, (2, 1000, 10): 4.4, (2, 1000, 5000): 8.0,
    })  # fmt: skip
    lines = growth_report.ratios(runs, plans).splitlines()
    by_name = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert by_name["following 5,000 / 10, 100 posts, primary"].endswith(
        "| 1.62 | 1.50-1.75 | <= 2.0 | met | 500.00x |"
    )
    # 1,000 / 100 posts at 5,000 followed: 1.5 and 1.14, median 1.32 against 1.3.
    assert (
        "| 1.32 | 1.14-1.50 | <= 1.3 | **not met**, by 2% |"
        in by_name["1,000 / 100 posts, following 5,000, primary"]
    )
    assert (
        "| 1.10 | 1.10-1.10 | <= 1.3 | met | 1.00x |"
        in by_name["1,000 / 100 posts, following 10, primary"]
    )


def test_the_table_shows_each_rows_median_round_and_its_plan():
    runs, plans = runs_and_plans({(1, 100, 10): 2.0, (2, 100, 10): 9.0, (3, 100, 10): 3.0})
    (row,) = growth_report.table(runs, plans).splitlines()[2:]
    assert row.startswith(
        "| 100 | primary | 10 | 20 | 200 | 10.0 | 30.0 | 0 | 3.00 / 0.00 / 0.00 / 3.00 |"
    )
    assert row.endswith("| 1,000 (1,000 + 0) | 21 | 1.00 |")


def test_the_section_says_how_much_of_the_reading_the_replica_did():
    runs = [
        GrowthRun(1, 100, "primary", 10, 20, measured(2.0, 1.0)),
        GrowthRun(1, 100, "replica", 10, 20, measured(2.0, 0.25, 0.75)),
    ]
    assert growth_report.replica_share(runs) == (
        "Through the replica, the replica did 75% of the PostgreSQL work of those rows and the "
        "primary the rest."
    )
    assert "no replica could be made" in growth_report.replica_share(runs[:1])
