"""`microblog.pyz db --replica`: a streaming replica of the embedded database, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.conftest import fetch_rows, fetch_value, wait_for

pytestmark = pytest.mark.process


def first_line(path: Path) -> str:
    return path.read_text().strip().split("\n")[0] if path.exists() else ""


def execute(url: str, sql: str) -> None:
    asyncio.run(fetch_rows(url, sql))


def notes(url: str) -> list[str] | None:
    try:
        return [row[0] for row in asyncio.run(fetch_rows(url, "SELECT body FROM notes ORDER BY 1"))]
    except (asyncpg.UndefinedTableError, OSError):
        return None


def monitored_by_a_web_instance(replica_url: str) -> bool:
    rows = asyncio.run(
        fetch_rows(
            replica_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'microblog web % monitor'",
        )
    )
    return bool(rows)


def test_the_replica_streams_the_embedded_database_across_restarts(launcher, pyz, scratch_dir):
    workdir, data = scratch_dir / "cwd", scratch_dir / "var"
    env = pyz.env(MICROBLOG_DATA_DIR=str(data))
    outputs = [scratch_dir / f"replica-{n}.out" for n in (1, 2, 3)]

    replica = launcher.start(["db", "--replica"], cwd=workdir, env=env, stdout=outputs[0])
    wait_for(lambda: "waiting for the embedded database" in replica.stderr, "a waiting replica")
    primary_out = scratch_dir / "primary.out"
    primary = launcher.start(["db"], cwd=workdir, env=env, stdout=primary_out)
    wait_for(lambda: first_line(primary_out), "the primary's URL", primary.popen)
    wait_for(lambda: first_line(outputs[0]), "the replica's URL", replica.popen)
    primary_url, replica_url = first_line(primary_out), first_line(outputs[0])
    assert replica_url != primary_url
    assert (data / "replica" / "url").read_text().strip() == replica_url

    execute(primary_url, "CREATE TABLE notes (body text)")
    execute(primary_url, "INSERT INTO notes VALUES ('written before the stop')")
    wait_for(lambda: notes(replica_url) == ["written before the stop"], "the write, replicated")
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        execute(replica_url, "INSERT INTO notes VALUES ('on the replica')")
    assert replica.stop() == 0

    execute(primary_url, "INSERT INTO notes VALUES ('written while it was stopped')")
    again = launcher.start(["db", "--replica"], cwd=workdir, env=env, stdout=outputs[1])
    wait_for(lambda: first_line(outputs[1]), "the replica's URL again", again.popen)
    assert first_line(outputs[1]) == replica_url
    wait_for(
        lambda: notes(replica_url) == ["written before the stop", "written while it was stopped"],
        "the replica catching up",
    )
    assert "making the replica again" not in again.stderr, "the copy was not reused"

    # An instance started from the same data folder finds the replica by itself.
    launcher.web(cwd=workdir, env=env)
    wait_for(lambda: monitored_by_a_web_instance(replica_url), "the web instance's replica monitor")

    # The slot bounds the WAL kept for it; a replica whose slot is gone is copied anew.
    assert fetch_value(primary_url, "SHOW max_slot_wal_keep_size") == "1GB"
    assert again.stop() == 0
    execute(primary_url, "SELECT pg_drop_replication_slot('microblog_replica')")
    anew = launcher.start(["db", "--replica"], cwd=workdir, env=env, stdout=outputs[2])
    wait_for(lambda: first_line(outputs[2]), "the replica's URL after a new copy", anew.popen)
    assert "making the replica again" in anew.stderr
    assert notes(replica_url) == ["written before the stop", "written while it was stopped"]


def test_the_replica_command_is_for_the_embedded_database_only(launcher, pyz, workdir):
    result = launcher.run(
        ["db", "--replica"], cwd=workdir, env=pyz.env(DATABASE_URL="postgresql://db.invalid/app")
    )
    assert result.returncode == 2
    assert "DATABASE_URL is set" in result.stderr
