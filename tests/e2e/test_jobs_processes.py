"""The queue with real worker processes: kill -9 safety and recurring jobs run once per slot."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
from pathlib import Path

import asyncpg
import pytest

from microblog.jobs.builtin import ping
from microblog.jobs.queue import enqueue_many
from tests.e2e.conftest import Launcher, fetch_rows, fetch_value, wait_for

pytestmark = pytest.mark.process

JOBS = 2_000
# Fast liveness, so a killed worker's jobs come back within seconds.
LIVENESS = {"HEARTBEAT_INTERVAL": "500ms", "HEARTBEAT_TIMEOUT": "2s"}


def _wait(url: str, sql: str, done, what: str, within: float, *args) -> None:
    wait_for(lambda: done(fetch_value(url, sql, *args)), what, within=within)


async def _enqueue(url: str, count: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await enqueue_many(conn, ping, [{"sleep_ms": 20} for _ in range(count)])
    finally:
        await conn.close()


FINISHED = "SELECT count(*) FROM infra.jobs WHERE kind = 'jobs.ping' AND state = 'finished'"


def test_killing_workers_mid_run_loses_no_job(
    fresh_database: str, launcher: Launcher, pyz, workdir: Path
):
    env = pyz.env(DATABASE_URL=fresh_database, **LIVENESS)
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    asyncio.run(_enqueue(fresh_database, JOBS))
    workers = [launcher.start(["worker"], cwd=workdir, env=env) for _ in range(3)]
    kills = 0
    for share in (0.2, 0.45, 0.7):  # kill worker 0 when this share of the jobs is done
        _wait(fresh_database, FINISHED, lambda n, s=share: n >= JOBS * s, "progress", 60)
        workers[0].popen.send_signal(signal.SIGKILL)
        workers[0].popen.wait(5)
        workers[0].stopped = True
        kills += 1
        workers[0] = launcher.start(["worker"], cwd=workdir, env=env)
        registered = "SELECT count(*) FROM infra.processes WHERE pid = $1"
        _wait(fresh_database, registered, bool, "restarted worker", 30, workers[0].popen.pid)
    _wait(fresh_database, FINISHED, lambda n: n == JOBS, "every job finished", 90)
    states = dict(
        asyncio.run(
            fetch_rows(
                fresh_database,
                "SELECT state, count(*) FROM infra.jobs WHERE kind = 'jobs.ping' GROUP BY 1",
            )
        )
    )
    ran_twice = fetch_value(
        fresh_database, "SELECT count(*) FROM infra.jobs WHERE kind = 'jobs.ping' AND attempts > 1"
    )
    print(f"\n{JOBS} jobs, {kills} workers killed with SIGKILL: {ran_twice} ran more than once")
    assert states.get("failed", 0) == 0
    assert states.get("pending", 0) == states.get("running", 0) == 0
    # At least once, and boundedly so: only what a killed worker held runs again.
    assert ran_twice <= kills * 10 * 10


def test_a_recurring_job_runs_once_per_slot_across_three_workers(
    fresh_database: str, launcher: Launcher, pyz, workdir: Path
):
    # prune-dead-processes recurs every HEARTBEAT_INTERVAL: one slot per second here.
    env = pyz.env(DATABASE_URL=fresh_database, HEARTBEAT_INTERVAL="1s", HEARTBEAT_TIMEOUT="3s")
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    workers = [launcher.start(["worker"], cwd=workdir, env=env) for _ in range(3)]
    slots = "SELECT count(*) FROM infra.recurring_runs WHERE name = 'prune-dead-processes'"
    _wait(fresh_database, slots, lambda n: n >= 11, "ten slots", 30)
    stats = launcher.run(["jobs", "stats"], cwd=workdir, env=env)
    assert stats.stdout.splitlines()[-1].startswith("taking jobs: ")
    assert stats.stdout.count("(worker, pid ") == 3
    for worker in workers:
        assert worker.stop() == 0
    runs = asyncio.run(
        fetch_rows(
            fresh_database,
            """
            SELECT r.slot, j.attempts, j.state
            FROM infra.recurring_runs r JOIN infra.jobs j ON j.id = r.job_id
            WHERE r.name = 'prune-dead-processes' ORDER BY r.slot
            """,
        )
    )
    jobs = fetch_value(
        fresh_database, "SELECT count(*) FROM infra.jobs WHERE kind = 'jobs.prune_dead_processes'"
    )
    print(f"\n{len(runs)} one-second slots across three workers, {jobs} jobs")
    assert len(runs) >= 11
    assert jobs == len(runs), "a slot was enqueued twice"
    steps = {(b["slot"] - a["slot"]).total_seconds() for a, b in itertools.pairwise(runs)}
    assert steps == {1.0}, "a slot was skipped"
    for run in runs[:-1]:  # the last slot's job may still have been waiting at the stop
        assert (run["attempts"], run["state"]) == (1, "finished"), run


async def _fail_a_job(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        [job_id] = await enqueue_many(conn, ping, [{}])
        await conn.execute(
            """
            UPDATE infra.jobs SET state = 'failed', attempts = 5, finished_at = now(),
                last_error = 'RuntimeError: it broke' || E'\\n\\nTraceback ...'
            WHERE id = $1
            """,
            job_id,
        )
    finally:
        await conn.close()
    return job_id


def test_the_jobs_commands_show_retry_and_discard(
    fresh_database: str, launcher: Launcher, pyz, workdir: Path
):
    env = pyz.env(DATABASE_URL=fresh_database)
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    job_id = asyncio.run(_fail_a_job(fresh_database))

    stats = launcher.run(["jobs", "stats"], cwd=workdir, env=env)
    assert stats.returncode == 0
    assert re.search(r"^default\s+failed\s+1\b", stats.stdout, re.MULTILINE), stats.stdout
    assert stats.stdout.splitlines()[-1] == (
        "no worker or combined process is running: pending jobs wait until one starts"
    )

    failed = launcher.run(["jobs", "failed"], cwd=workdir, env=env)
    assert f"{job_id}\tdefault\tjobs.ping\tattempts=5\tRuntimeError: it broke" in failed.stdout

    refused = launcher.run(["jobs", "retry"], cwd=workdir, env=env)
    assert refused.returncode == 2
    assert "give a job ID or --all" in refused.stderr

    retried = launcher.run(["jobs", "retry", str(job_id)], cwd=workdir, env=env)
    assert (retried.returncode, retried.stdout.strip()) == (0, "retried 1 job")
    state = "SELECT state || ':' || attempts FROM infra.jobs WHERE id = $1"
    assert fetch_value(fresh_database, state, job_id) == "pending:0"

    not_failed = launcher.run(["jobs", "retry", str(job_id)], cwd=workdir, env=env)
    assert not_failed.returncode == 1

    discarded = launcher.run(["jobs", "discard", str(job_id)], cwd=workdir, env=env)
    assert (discarded.returncode, discarded.stdout.strip()) == (0, f"discarded job {job_id}")
    assert fetch_value(fresh_database, state, job_id) == "discarded:0"

    again = [asyncio.run(_fail_a_job(fresh_database)) for _ in range(2)]
    of_kind = launcher.run(["jobs", "failed", "--kind", "jobs.ping"], cwd=workdir, env=env)
    assert [line.split("\t")[0] for line in of_kind.stdout.splitlines()] == [
        str(n) for n in reversed(again)
    ]
    other_kind = launcher.run(["jobs", "failed", "--kind", "no.such"], cwd=workdir, env=env)
    assert other_kind.stdout.strip() == "(no failed jobs)"
    one_and_kind = ["jobs", "retry", str(again[0]), "--kind", "jobs.ping"]
    lone_kind = launcher.run(one_and_kind, cwd=workdir, env=env)
    assert (lone_kind.returncode, lone_kind.stderr.strip()) == (
        2,
        "microblog: --kind goes with --all",
    )
    all_of_kind = ["jobs", "discard", "--all", "--kind", "jobs.ping"]
    discarded = launcher.run(all_of_kind, cwd=workdir, env=env)
    assert (discarded.returncode, discarded.stdout.strip()) == (0, "discarded 2 jobs")
    assert [fetch_value(fresh_database, state, n) for n in again] == ["discarded:5"] * 2
    gone = launcher.run(["jobs", "discard", str(job_id)], cwd=workdir, env=env)
    assert gone.returncode == 1
