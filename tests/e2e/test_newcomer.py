"""What a newcomer meets: the README's run command, from the built .pyz, on the embedded
database, and what its first and later starts say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from microblog.db.migrate import ALL
from tests.e2e.conftest import Launcher, WebProcess, fetch_value, sign_up, wait_for
from tests.test_readme import command_after

pytestmark = pytest.mark.process

NO_JOB_TAKER = "no worker or combined process is running"


def readme_run_mode() -> str:
    """The mode the README's run command starts; it names no option, so the tests run exactly
    that mode (on a port of their own)."""
    build, run = command_after("Run it").split(" && ")
    assert build == "python3 build.py"
    program, *arguments = run.split()
    assert program == "./microblog.pyz"
    assert len(arguments) == 1, f"the README runs {arguments}: one mode, no options"
    return arguments[0]


def start_lines(process: WebProcess) -> list[str]:
    """What the process said before it answered its first request."""
    lines = process.stderr.splitlines()
    first_request = next(i for i, line in enumerate(lines) if " microblog.access " in line)
    return lines[:first_request]


def test_the_readme_run_command_delivers_a_like_notification(launcher: Launcher, workdir: Path):
    app = launcher.web(cwd=workdir, mode=readme_run_mode())  # no DATABASE_URL: ./var
    with app.client() as alice, app.client() as bob:
        sign_up(alice, "alice")
        assert alice.submit("/", "/posts", body="my first post").status_code == 303
        sign_up(bob, "bob")
        profile = bob.page("/@alice")
        (like,) = re.findall(r'action="(/posts/\d+/like)"', profile)
        assert bob.submit("/@alice", like).status_code == 303
        wait_for(
            lambda: "liked your post" in alice.page("/notifications"),
            "alice's notification of bob's like",
            app.popen,
            within=30,
            every=0.5,  # the default rate limits apply: 300 requests in 5 minutes
        )
    assert (workdir / "var" / "pgdata").is_dir(), "on the embedded database"


def test_first_start_says_in_a_few_lines_where_the_embedded_database_lives(
    launcher: Launcher, workdir: Path
):
    app = launcher.web(cwd=workdir, mode=readme_run_mode())
    assert app.stop() == 0, app.describe()
    said = start_lines(app)
    version = (workdir / "var" / "pgdata" / "PG_VERSION").read_text().strip()
    migrations = sum(len(migration_set.migrations()) for migration_set in ALL)
    assert len(said) <= 3, "\n".join(said)
    assert f"embedded PostgreSQL {version} created in ./var (first start, a few seconds)" in said[0]
    assert "to start afresh, stop every microblog process and delete ./var" in said[0]
    assert f"migrations={migrations}" in said[1]
    assert "migration applied" not in app.stderr, "one summary, not a line per migration"
    assert f"http://127.0.0.1:{app.port}" in said[-1]


def test_later_starts_say_they_started_or_joined_the_embedded_server(
    launcher: Launcher, workdir: Path
):
    mode = readme_run_mode()
    first = launcher.web(cwd=workdir, mode=mode)
    assert first.stop() == 0, first.describe()
    version = (workdir / "var" / "pgdata" / "PG_VERSION").read_text().strip()

    again = launcher.web(cwd=workdir, mode=mode)
    joining = launcher.web(cwd=workdir, mode=mode)
    for process, said in (
        (again, f"embedded PostgreSQL {version} started from ./var"),
        (joining, f"joined the embedded PostgreSQL {version} already running from ./var"),
    ):
        lines = start_lines(process)
        assert said in lines[0], "\n".join(lines)
        assert len(lines) == 2, "the schema is up to date: nothing to say about it"
        assert "first start" not in process.stderr


def test_web_alone_says_that_jobs_wait_and_not_when_a_worker_runs(
    fresh_database: str, launcher: Launcher, workdir: Path
):
    env = launcher.pyz.env(DATABASE_URL=fresh_database)
    alone = launcher.web(cwd=workdir, env=env)
    assert sum(NO_JOB_TAKER in line for line in alone.stderr.splitlines()) == 1, alone.stderr
    assert "warning" in next(line for line in alone.stderr.splitlines() if NO_JOB_TAKER in line)

    worker = launcher.start(["worker"], cwd=workdir, env=env)
    wait_for(
        lambda: fetch_value(
            fresh_database, "SELECT count(*) FROM infra.processes WHERE role = 'worker'"
        ),
        "the worker's registration",
        worker.popen,
    )
    paired = launcher.web(cwd=workdir, env=env)
    combined = launcher.web(cwd=workdir, env=env, mode="combined")
    for process in (paired, combined):
        assert NO_JOB_TAKER not in process.stderr, process.describe()
