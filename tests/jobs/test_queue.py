"""The job API and the worker, in process, against a real PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from microblog.jobs import admin, processes
from microblog.jobs.builtin import prune_dead_processes
from microblog.jobs.queue import enqueue, enqueue_many
from microblog.jobs.registry import JobArgumentsError, JobContext
from microblog.jobs.worker import retry_delay
from tests.conftest import wait_until
from tests.jobs.conftest import exclusive, job_states, record, running_worker

pytestmark = pytest.mark.through_pgbouncer


async def _finished(db, count: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM infra.jobs WHERE state = 'finished'") == count


async def test_a_rolled_back_transaction_leaves_no_job(db):
    class Abort(Exception):
        pass

    async def enqueue_then_fail() -> None:
        async with db.transaction():
            await enqueue(db, record, {"key": "rolled back"})
            raise Abort

    with pytest.raises(Abort):
        await enqueue_then_fail()
    assert await job_states(db) == {}
    async with db.transaction():
        await enqueue(db, record, {"key": "committed"})
    assert await job_states(db) == {"pending": 1}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "missing"),
        ({"key": "k", "colour": "red"}, "unexpected"),
        ({"key": {1, 2}}, "not JSON"),
        ({"key": "k", "sleep": math.nan}, "not JSON"),
        ({"key": datetime.now(UTC)}, "not JSON"),
    ],
)
async def test_bad_arguments_fail_at_enqueue(db, args, problem):
    with pytest.raises(JobArgumentsError, match=problem):
        await enqueue(db, record, args)
    assert await job_states(db) == {}


async def test_a_worker_runs_every_job_once(pools, runs):
    await enqueue_many(runs, record, [{"key": f"job {n}"} for n in range(50)])
    async with running_worker(pools, concurrency=5):
        await wait_until(lambda: _finished(runs, 50))
    assert await runs.fetchval("SELECT count(DISTINCT key) FROM test_runs") == 50
    assert await runs.fetchval("SELECT count(*) FROM test_runs") == 50


async def test_bulk_enqueue_returns_ids_in_order(db):
    ids = await enqueue_many(db, record, [{"key": str(n)} for n in range(5)])
    keys = await db.fetch("SELECT args->>'key' AS key FROM infra.jobs ORDER BY id")
    assert ids == sorted(ids)
    assert [row["key"] for row in keys] == ["0", "1", "2", "3", "4"]


async def test_a_failing_job_is_retried_with_backoff_then_succeeds(pools, runs):
    await enqueue(runs, record, {"key": "flaky", "fail_times": 2})
    async with running_worker(pools, poll_interval=0.05):  # retries are found by polling
        await wait_until(lambda: _finished(runs, 1))
    starts = [r["started"] for r in await runs.fetch("SELECT started FROM test_runs ORDER BY 1")]
    assert len(starts) == 3
    # retry_base is 0.05 s: the second wait is about twice the first (jitter: x0.5 to x1.5)
    assert starts[1] - starts[0] >= timedelta(seconds=0.025)
    assert starts[2] - starts[1] >= timedelta(seconds=0.05)
    job = await runs.fetchrow("SELECT attempts, last_error FROM infra.jobs")
    assert job["attempts"] == 3
    assert "planned failure 2 of flaky" in job["last_error"]


async def test_a_job_that_keeps_failing_ends_failed_with_its_traceback_and_can_be_retried(
    pools, runs
):
    job_id = await enqueue(runs, record, {"key": "doomed", "fail_times": 99})
    async with running_worker(pools, poll_interval=0.05):
        await wait_until(lambda: _state_is(runs, job_id, "failed"))
        [failed] = await admin.failed(runs)
        assert failed.id == job_id
        assert failed.attempts == 3
        assert "RuntimeError: planned failure 3 of doomed" in failed.last_error
        assert "Traceback" in failed.last_error
        assert await admin.retry(runs, job_id)
        await wait_until(lambda: _state_is(runs, job_id, "failed"))
    assert await runs.fetchval("SELECT count(*) FROM test_runs") == 6


async def _state_is(db, job_id: int, state: str) -> bool:
    return await db.fetchval("SELECT state FROM infra.jobs WHERE id = $1", job_id) == state


def test_retry_delay_grows_exponentially_with_jitter():
    for attempt in range(1, 8):
        delay = retry_delay(2.0, attempt)
        assert 2.0 * 2 ** (attempt - 1) * 0.5 <= delay <= 2.0 * 2 ** (attempt - 1) * 1.5
    assert retry_delay(2.0, 40) <= 3600 * 1.5


async def test_a_unique_key_admits_one_waiting_job(pools, runs):
    first = await enqueue(runs, record, {"key": "a"}, unique_key="digest:42")
    assert first is not None
    assert await enqueue(runs, record, {"key": "b"}, unique_key="digest:42") is None
    async with running_worker(pools):
        await wait_until(lambda: _finished(runs, 1))
    again = await enqueue(runs, record, {"key": "c"}, unique_key="digest:42")
    assert again is not None  # the first one finished, so the key is free again


async def test_a_scheduled_job_waits_for_run_at(pools, runs):
    run_at = datetime.now(UTC) + timedelta(seconds=0.6)
    await enqueue(runs, record, {"key": "later"}, run_at=run_at)
    await enqueue(runs, record, {"key": "now"})
    async with running_worker(pools, poll_interval=0.1):
        await wait_until(lambda: _finished(runs, 2))
    started = {
        r["key"]: r["started"] for r in await runs.fetch("SELECT key, started FROM test_runs")
    }
    assert started["later"] >= run_at
    assert started["now"] < run_at


async def test_higher_priority_runs_first(pools, runs):
    await enqueue(runs, record, {"key": "low"}, priority=-5)
    await enqueue(runs, record, {"key": "normal"})
    await enqueue(runs, record, {"key": "urgent"}, priority=10)
    async with running_worker(pools, concurrency=1):
        await wait_until(lambda: _finished(runs, 3))
    order = [r["key"] for r in await runs.fetch("SELECT key FROM test_runs ORDER BY started")]
    assert order == ["urgent", "normal", "low"]


async def test_a_concurrency_limit_holds_across_workers(pools, runs):
    await enqueue_many(runs, exclusive, [{"key": f"x{n}", "sleep": 0.05} for n in range(6)])
    async with running_worker(pools, concurrency=4), running_worker(pools, concurrency=4):
        await wait_until(lambda: _finished(runs, 6))
    overlaps = await runs.fetchval(
        """
        SELECT count(*) FROM test_runs a JOIN test_runs b
        ON a.key < b.key AND a.started < b.ended AND b.started < a.ended
        """
    )
    assert overlaps == 0
    assert await runs.fetchval("SELECT count(*) FROM test_runs") == 6


async def test_a_pending_job_can_be_cancelled(pools, runs):
    job_id = await enqueue(runs, record, {"key": "never"}, run_at=datetime.now(UTC) + timedelta(1))
    assert await admin.discard(runs, job_id)
    assert await _state_is(runs, job_id, "discarded")
    assert not await admin.discard(runs, job_id)  # nothing left to cancel


async def test_stopping_lets_a_running_job_finish(pools, runs):
    await enqueue(runs, record, {"key": "slow", "sleep": 0.4})
    async with running_worker(pools, shutdown_timeout=5) as stop:
        await wait_until(lambda: _has_started(runs, "slow"))
        stop.set()
    assert await runs.fetchval("SELECT ended IS NOT NULL FROM test_runs WHERE key = 'slow'")
    assert await job_states(runs) == {"finished": 1}


async def test_a_job_still_running_at_the_shutdown_timeout_goes_back_untouched(pools, runs):
    job_id = await enqueue(runs, record, {"key": "endless", "sleep": 30})
    async with running_worker(pools, shutdown_timeout=0.2) as stop:
        await wait_until(lambda: _has_started(runs, "endless"))
        stop.set()
    job = await runs.fetchrow(
        "SELECT state, attempts, locked_by FROM infra.jobs WHERE id = $1", job_id
    )
    assert dict(job) == {"state": "pending", "attempts": 0, "locked_by": None}


async def _has_started(db, key: str) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM test_runs WHERE key = $1", key))


async def test_notifications_wake_an_idle_worker_at_once(pools, runs):
    async with running_worker(pools, poll_interval=30):
        await wait_until(lambda: _listening(runs))  # idle: the only way to wake it is a NOTIFY
        async with runs.transaction():
            await enqueue(runs, record, {"key": "ping"})
        await wait_until(lambda: _finished(runs, 1), within=5)


async def test_polling_keeps_jobs_flowing_without_notifications(pools, runs):
    async with running_worker(pools, listen_for_jobs=False, poll_interval=0.1):
        await enqueue(runs, record, {"key": "unannounced"})
        await wait_until(lambda: _finished(runs, 1), within=5)


async def test_a_dropped_listener_reconnects_by_itself(pools, runs, server_url):
    async with running_worker(pools, poll_interval=30):
        await wait_until(lambda: _listening(runs))
        admin_conn = await asyncpg.connect(server_url)
        try:
            terminated = await admin_conn.fetchval(
                """
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = $1 AND query LIKE 'LISTEN%'
                """,
                await runs.fetchval("SELECT current_database()"),
            )
        finally:
            await admin_conn.close()
        assert terminated == 1
        await wait_until(lambda: _listening(runs))  # a new LISTEN connection is up
        await enqueue(runs, record, {"key": "after the drop"})
        await wait_until(lambda: _finished(runs, 1), within=5)


async def _listening(db) -> bool:
    count = await db.fetchval(
        """
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE 'LISTEN%' AND state = 'idle'
        """
    )
    return count == 1


async def test_only_processes_heard_from_within_the_timeout_count_as_alive(pools, runs):
    async with (
        processes.registered(pools.queue, role="worker", name="w-1", interval=60),
        processes.registered(pools.queue, role="web", name="web-1", interval=60),
    ):
        await runs.execute(
            """
            INSERT INTO infra.processes (id, role, name, hostname, pid, heartbeat_at)
            VALUES (gen_random_uuid(), 'combined', 'silent', 'host', 1, now() - interval '1 minute')
            """
        )
        alive = await processes.alive(runs, timeout_seconds=30)
        assert [(p.role, p.name) for p in alive] == [("web", "web-1"), ("worker", "w-1")]
        assert len(await processes.alive(runs, timeout_seconds=3600)) == 3


async def test_jobs_of_a_process_that_stopped_heartbeating_go_back_to_the_queue(
    pools, transactions, runs
):
    dead = "00000000-0000-0000-0000-00000000dead"
    await runs.execute(
        """
        INSERT INTO infra.processes (id, role, name, hostname, pid, heartbeat_at)
        VALUES ($1, 'worker', 'gone', 'host', 1, now() - interval '1 minute')
        """,
        dead,
    )
    held = await enqueue(runs, record, {"key": "held by the dead"})
    doomed = await enqueue(runs, record, {"key": "out of attempts"})
    await runs.execute(
        """
        UPDATE infra.jobs SET state = 'running', locked_by = $1,
            attempts = CASE WHEN id = $2 THEN max_attempts ELSE 1 END
        WHERE id IN ($2, $3)
        """,
        dead,
        doomed,
        held,
    )
    await prune_dead_processes(JobContext(pools, 0, 1, transactions), {"silent_for": 30})
    assert await runs.fetchval("SELECT count(*) FROM infra.processes") == 0
    assert await _state_is(runs, held, "pending")
    assert await _state_is(runs, doomed, "failed")  # a job that keeps killing workers stops


async def test_a_concurrency_limit_holds_on_a_queue_other_than_the_kinds_own(pools, runs):
    await enqueue_many(
        runs, exclusive, [{"key": f"y{n}", "sleep": 0.05} for n in range(4)], queue="other"
    )
    async with (
        running_worker(pools, concurrency=4, queues=("other",)),
        running_worker(pools, concurrency=4, queues=("other",)),
    ):
        await wait_until(lambda: _finished(runs, 4))
    overlaps = await runs.fetchval(
        """
        SELECT count(*) FROM test_runs a JOIN test_runs b
        ON a.key < b.key AND a.started < b.ended AND b.started < a.ended
        """
    )
    assert overlaps == 0
