"""What a newcomer meets: the README's run command, from the built .pyz, on the embedded
database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import Launcher, fetch_value, sign_up, wait_for
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
