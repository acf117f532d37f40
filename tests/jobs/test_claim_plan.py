"""Claiming reads only the jobs it takes, even from a backlog the planner does not know of."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.through_pgbouncer

WANTED = 100
BACKLOG = 20_000


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def test_a_claim_reads_only_what_it_takes_from_a_backlog_with_stale_statistics(db):
    # The statistics still describe an empty queue: a burst that arrives before autovacuum
    # has analyzed the table, or a worker started on a full queue.
    await db.execute(
        """
        INSERT INTO infra.jobs (queue, kind, args, max_attempts)
        SELECT 'default', 'jobs.ping', '{}', 5 FROM generate_series(1, $1)
        """,
        BACKLOG,
    )
    body, settings = await db.fetchrow(
        "SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'claim_jobs'"
    )
    tr = db.transaction()
    await tr.start()
    try:
        for setting in settings:
            name, value = setting.split("=", 1)
            await db.execute(f"SET LOCAL {name} = {value}")
        await db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        statement = await db.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {body}")
        explained = await statement.fetchval(uuid.uuid4(), [], WANTED, [], None, [])
    finally:
        await tr.rollback()
    plan = json.loads(explained)[0]["Plan"]
    scans = [node for node in _nodes(plan) if node.get("Relation Name") == "jobs"]
    assert scans, explained
    for node in scans:
        read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        assert node["Node Type"] not in ("Seq Scan", "Bitmap Heap Scan"), explained
        assert read <= 2 * WANTED, explained
