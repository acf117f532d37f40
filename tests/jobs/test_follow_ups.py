"""Jobs that enqueue follow-up jobs, through the same enqueue as request handlers: with the
queue in the app's database and in one of its own, a follow-up exists exactly when the
transaction that asked for it committed."""

from __future__ import annotations

import pytest

from microblog.jobs.queue import enqueue, enqueue_many
from microblog.jobs.registry import JobContext, JobRegistry, job
from tests.conftest import wait_until
from tests.jobs.conftest import exclusive, record, running_worker

pytestmark = [pytest.mark.both_layouts, pytest.mark.through_pgbouncer]


class Refused(Exception):
    """The job's write is refused after it asked for its follow-ups."""


@job("test.hand_on", max_attempts=1)
async def hand_on(ctx: JobContext, *, key: str, fail: bool = False) -> None:
    async with ctx.transaction() as conn:
        await conn.execute(
            "INSERT INTO test_runs (key, attempt, started) VALUES ($1, 0, now())", key
        )
        await enqueue(conn, record, {"key": f"{key}: follow-up"})
        await enqueue_many(conn, record, [{"key": f"{key}: one of many"}])
        if fail:
            raise Refused


REGISTRY = JobRegistry([hand_on, record, exclusive])


async def _keys(queue_db, state: str) -> list[str]:
    rows = await queue_db.fetch(
        "SELECT args->>'key' AS key FROM infra.jobs WHERE state = $1 ORDER BY id", state
    )
    return [row["key"] for row in rows]


async def test_a_job_that_commits_hands_on_its_follow_ups(pools, runs, queue_db):
    await enqueue(queue_db, hand_on, {"key": "committed"})
    async with running_worker(pools, registry=REGISTRY, poll_interval=0.05):
        await wait_until(lambda: _count_finished(queue_db, 3))
    assert await _keys(queue_db, "finished") == [
        "committed",
        "committed: follow-up",
        "committed: one of many",
    ]
    ran = await runs.fetch("SELECT key FROM test_runs ORDER BY key")
    assert [row["key"] for row in ran] == [
        "committed",
        "committed: follow-up",
        "committed: one of many",
    ]


async def test_a_job_whose_write_rolls_back_hands_on_nothing(pools, runs, queue_db):
    await enqueue(queue_db, hand_on, {"key": "refused", "fail": True})
    async with running_worker(pools, registry=REGISTRY, poll_interval=0.05):
        await wait_until(lambda: _count_failed(queue_db, 1))
    assert await queue_db.fetchval("SELECT count(*) FROM infra.jobs") == 1
    assert await runs.fetchval("SELECT count(*) FROM test_runs") == 0


async def _count_finished(queue_db, count: int) -> bool:
    return (
        await queue_db.fetchval("SELECT count(*) FROM infra.jobs WHERE state = 'finished'") == count
    )


async def _count_failed(queue_db, count: int) -> bool:
    return (
        await queue_db.fetchval("SELECT count(*) FROM infra.jobs WHERE state = 'failed'") == count
    )
