"""What operators ask of the queue (microblog/jobs/admin.py), against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from microblog.jobs import admin
from microblog.jobs.queue import enqueue, enqueue_many
from tests.jobs.conftest import exclusive, job_states, record


async def _failed_jobs(db, kind, count: int, **args) -> list[int]:
    ids = await enqueue_many(db, kind, [{"key": f"k{n}", **args} for n in range(count)])
    await db.execute(
        "UPDATE infra.jobs SET state = 'failed', finished_at = now(), last_error = 'boom' "
        "WHERE id = any($1)",
        ids,
    )
    return ids


async def test_depth_splits_pending_into_due_and_scheduled_and_ages_the_oldest_due(db):
    await enqueue(db, record, {"key": "due"}, run_at=datetime.now(UTC) - timedelta(seconds=30))
    await enqueue(db, record, {"key": "later"}, run_at=datetime.now(UTC) + timedelta(hours=1))
    await _failed_jobs(db, record, 2)
    done = await enqueue(db, record, {"key": "done"})
    await db.execute("UPDATE infra.jobs SET state = 'finished', finished_at = now() WHERE id = $1",
                     done)  # fmt: skip
    depth = {(row.queue, row.state): row for row in await admin.depth(db)}
    assert {key: row.count for key, row in depth.items()} == {
        ("default", "pending"): 1,
        ("default", "scheduled"): 1,
        ("default", "failed"): 2,
    }
    assert 29 < depth["default", "pending"].oldest_due_seconds < 60
    assert depth["default", "scheduled"].oldest_due_seconds is None


async def test_retrying_all_of_a_kind_goes_in_batches_and_leaves_other_kinds_failed(db):
    retried_kind = await _failed_jobs(db, record, admin.BATCH * 2 + 7)
    other_kind = await _failed_jobs(db, exclusive, 3, sleep=0)
    batches: list[int] = []

    async def audit(conn, count: int) -> None:
        assert conn.is_in_transaction()
        batches.append(count)

    count = await admin.retry_matching(db, record.name, each_batch=audit)
    assert count == len(retried_kind)
    assert batches == [admin.BATCH, admin.BATCH, 7]
    assert await job_states(db) == {"pending": len(retried_kind), "failed": len(other_kind)}
    assert await admin.failed_kinds(db) == {exclusive.name: 3}


async def test_of_failed_jobs_sharing_a_unique_key_only_the_oldest_goes_back(db):
    first = await enqueue(db, record, {"key": "a"}, unique_key="same")
    await db.execute("UPDATE infra.jobs SET state = 'failed' WHERE id = $1", first)
    second = await enqueue(db, record, {"key": "b"}, unique_key="same")
    await db.execute("UPDATE infra.jobs SET state = 'failed' WHERE id = $1", second)
    assert await admin.retry_matching(db) == 1
    states = dict(await db.fetch("SELECT id, state FROM infra.jobs"))
    assert states == {first: "pending", second: "failed"}
    assert not await admin.retry(db, second), "its key is taken by a waiting job"


async def test_discarding_all_failed_jobs_touches_no_waiting_job(db):
    await _failed_jobs(db, record, admin.BATCH + 1)
    await enqueue(db, record, {"key": "waiting"})
    assert await admin.discard_matching(db) == admin.BATCH + 1
    assert await job_states(db) == {"discarded": admin.BATCH + 1, "pending": 1}
