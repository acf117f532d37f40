"""The built microblog.pyz as operators run it: real processes, real sockets, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import asyncpg
import psutil
import pytest

from microblog import __version__
from tests.e2e.conftest import (
    STOP_TIMEOUT,
    Launcher,
    Pyz,
    Visitor,
    forms,
    free_port,
    sign_up,
    wait_for,
)

pytestmark = pytest.mark.process

SECRET = "e2e-production-secret-" + "s" * 32
REQUIRED_COMMANDS = {"web", "migrate", "db"}


def post(visitor: Visitor, body: str) -> None:
    response = visitor.submit("/", "/posts", body=body)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def test_signup_post_follow_and_home_timeline_from_another_directory(
    launcher: Launcher, workdir: Path
):
    web = launcher.web(cwd=workdir)  # no MICROBLOG_DATA_DIR: the default ./var of its cwd
    with web.client() as alice, web.client() as bob:
        sign_up(alice, "alice")
        sign_up(bob, "bob")
        post(bob, "Hello from bob #e2e")
        assert "Hello from bob" not in alice.page("/"), "not following bob yet"

        assert any(f.action == "/@bob/follow" for f in forms(alice.page("/@bob")))
        response = alice.submit("/@bob", "/@bob/follow")
        assert response.status_code == 303
        assert "/@bob/unfollow" in alice.page("/@bob")

        post(alice, "Hello from alice")
        home = alice.page("/")
        assert "Hello from bob" in home
        assert home.index("Hello from alice") < home.index("Hello from bob"), "newest first"
    assert (workdir / "var" / "pgdata").is_dir(), "the embedded database lives in ./var"


def test_web_and_combined_serve_on_uvloop(launcher: Launcher, scratch_dir: Path):
    env = launcher.pyz.env(MICROBLOG_DATA_DIR=str(scratch_dir / "data"))
    for mode in ("web", "combined"):
        served = launcher.web(cwd=scratch_dir, env=env, mode=mode)
        with served.client() as visitor:
            assert visitor.http.get("/up").status_code == 200
        maps = Path(f"/proc/{served.popen.pid}/maps").read_text()
        assert re.search(r"/uvloop/loop\.[^/]*\.so$", maps, re.MULTILINE), mode
        assert served.stop() == 0, served.describe()


def test_two_web_processes_on_one_data_dir_share_sessions_and_data(
    launcher: Launcher, scratch_dir: Path
):
    env = launcher.pyz.env(MICROBLOG_DATA_DIR=str(scratch_dir / "shared-data"))
    # Started together on an empty folder: they race to create the same embedded server.
    first = launcher.web(cwd=scratch_dir / "one", env=env, wait=False)
    second = launcher.web(cwd=scratch_dir / "two", env=env, wait=False)
    first.wait_ready()
    second.wait_ready()

    with first.client() as on_first:
        sign_up(on_first, "carol")
        with second.client(cookies=on_first.http.cookies) as on_second:
            home = on_second.http.get("/")
            assert 'href="/@carol"' in home.text, "the session cookie works on the other"
            assert "Log out" in home.text
            assert home.headers["x-instance"] != on_first.http.get("/").headers["x-instance"]

            post(on_first, "written through the first")
            post(on_second, "written through the second")
            for visitor in (on_first, on_second):
                public = visitor.page("/public")
                assert "written through the first" in public
                assert "written through the second" in public

    # Stopping one instance leaves the shared embedded server up for the other.
    assert first.stop() == 0, first.describe()
    with second.client() as after:
        assert after.http.get("/up").status_code == 200
        assert "written through the first" in after.page("/public")


def _postgres_of(pgdata: Path) -> psutil.Process | None:
    """The embedded server kept in pgdata, if it runs."""
    try:
        process = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        return process if str(pgdata) in process.cmdline() else None
    except (FileNotFoundError, psutil.NoSuchProcess):
        return None


def _exited(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # exited, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


def test_the_last_clean_exit_stops_the_embedded_server_though_another_user_was_killed(
    launcher: Launcher, scratch_dir: Path
):
    data_dir = scratch_dir / "shared-data"
    env = launcher.pyz.env(MICROBLOG_DATA_DIR=str(data_dir))
    killed = launcher.web(cwd=scratch_dir / "one", env=env)
    survivor = launcher.web(cwd=scratch_dir / "two", env=env)
    postgres = _postgres_of(data_dir / "pgdata")
    assert postgres is not None, "both share one embedded server"
    try:
        killed.popen.kill()
        killed.popen.wait(STOP_TIMEOUT)
        killed.stopped = True
        with survivor.client() as visitor:
            assert visitor.http.get("/up").status_code == 200, "the server outlives the killed"
        assert survivor.stop() == 0, survivor.describe()
        assert _postgres_of(data_dir / "pgdata") is None, "the last clean exit stopped it"
        # pg_ctl waited for the server to stop; its process may take a moment to be gone.
        wait_for(lambda: _exited(postgres), "the embedded server's exit", within=STOP_TIMEOUT)
    finally:
        if not _exited(postgres):  # this test must not leave a server behind either way
            postgres.send_signal(signal.SIGINT)
            wait_for(lambda: _exited(postgres), "stopping the left-over server")


def test_sigterm_exits_zero_promptly_with_an_idle_keepalive_connection(
    launcher: Launcher, workdir: Path, fresh_database: str
):
    web = launcher.web(cwd=workdir, env=launcher.pyz.env(DATABASE_URL=fresh_database))
    with web.client() as visitor:
        assert visitor.http.get("/").status_code == 200  # keeps its connection open
        started = time.monotonic()
        assert web.stop() == 0, web.describe()
        elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"
    assert "stopped" in web.stderr


LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


def test_control_characters_in_a_request_path_stay_escaped_in_both_log_formats(
    launcher: Launcher, scratch_dir: Path, fresh_database: str
):
    text_env = launcher.pyz.env(DATABASE_URL=fresh_database)
    json_env = launcher.pyz.env(DATABASE_URL=fresh_database, LOG_FORMAT="json")
    as_text = launcher.web(cwd=scratch_dir / "text", env=text_env, wait=False)
    as_json = launcher.web(cwd=scratch_dir / "json", env=json_env, wait=False)
    # A carriage return and a forged line (tabs for spaces: nothing that asks for quotes), a
    # terminal escape and a NUL, percent-encoded as a browser would send them; the app sees
    # them decoded.
    forged = "\r2026-01-01T00:00:00Z\tinfo\tmicroblog.access\trequest\x1b[2J\x00"
    raw_path = "/x" + "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in forged)
    for web in (as_text, as_json):
        web.wait_ready()
        with web.client() as visitor:
            assert visitor.http.get(raw_path).status_code == 404
        assert web.stop() == 0, web.describe()

    text_log = as_text.stderr_path.read_bytes().decode()
    for line in text_log.splitlines(keepends=True):
        assert LOG_LINE_START.match(line), repr(line)
        assert line.endswith("\n"), repr(line)
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", line[:-1]), repr(line)
    access = [line for line in text_log.splitlines() if " path=/x" in line or ' path="/x' in line]
    assert len(access) == 1, text_log
    quoted = re.search(r' path=("(?:[^"\\]|\\.)*")', access[0])
    assert quoted, access[0]
    assert json.loads(quoted[1]) == "/x" + forged

    json_log = as_json.stderr_path.read_text()
    records = [json.loads(line) for line in json_log.splitlines()]  # one record per line
    paths = [r["path"] for r in records if r.get("path", "").startswith("/x")]
    assert paths == ["/x" + forged], json_log


def commands_listed_in(help_text: str) -> list[str]:
    """The subcommand names of the top-level --help ("    web    serve HTTP")."""
    section = help_text.split("commands:", 1)[1]
    return re.findall(r"^    ([a-z][a-z-]*)\b", section, re.MULTILINE)


def test_the_build_fetches_shiv_without_pips_warning_about_root(pyz: Pyz):
    if os.geteuid() != 0:
        pytest.skip("pip warns about running as root only to root")
    if "fetching shiv" not in pyz.build_output:
        pytest.skip("shiv is installed for the building python3: the build fetched nothing")
    assert "Running pip as the 'root' user" not in pyz.build_output, pyz.build_output


def test_version_and_help_on_every_command(launcher: Launcher, workdir: Path):
    assert os.access(launcher.pyz.path, os.X_OK), "the .pyz is executable"
    assert launcher.pyz.path.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    env = launcher.pyz.env()
    top = launcher.run(["--help"], cwd=workdir, env=env)
    assert top.returncode == 0, top.stderr
    commands = commands_listed_in(top.stdout)
    assert set(commands) >= REQUIRED_COMMANDS, top.stdout

    variants = [["--version"]]
    variants += [[command, flag] for command in commands for flag in ("--version", "--help")]
    results = launcher.run_all([(args, env) for args in variants], cwd=workdir)
    for args, result in zip(variants, results, strict=True):
        assert result.returncode == 0, f"{args}: {result.stderr}"
        if args[-1] == "--version":
            assert result.stdout.strip() == f"microblog {__version__}", args
        else:
            assert result.stdout.startswith(f"usage: microblog {args[0]}"), result.stdout
    assert not list(workdir.iterdir()), "--help and --version touch nothing"


BAD_SETTINGS = [
    ({"DATABASE_URL": "not-a-url"}, "DATABASE_URL"),
    ({"DB_POOL_SIZE": "abc"}, "DB_POOL_SIZE"),
    ({"MICROBLOG_ENV": "production"}, "DATABASE_URL"),
    (
        {"MICROBLOG_ENV": "production", "DATABASE_URL": "postgresql://u@127.0.0.1/x"},
        "SECRET_KEY_BASE",
    ),
    ({"SECRET_KEY_BASE": "too-short"}, "SECRET_KEY_BASE"),
]


def test_bad_settings_exit_2_with_one_line_naming_the_variable(launcher: Launcher, workdir: Path):
    runs = [(["web", "--port", str(free_port())], bad, variable) for bad, variable in BAD_SETTINGS]
    runs += [([command], {"DB_POOL_SIZE": "abc"}, "DB_POOL_SIZE") for command in ("migrate", "db")]
    results = launcher.run_all(
        [(args, launcher.pyz.env(**bad)) for args, bad, _ in runs], cwd=workdir
    )  # all at once: each is a second of interpreter start-up
    for (args, bad, variable), result in zip(runs, results, strict=True):
        where = f"{args[0]} with {bad}"
        assert result.returncode == 2, f"{where}: {result.stderr}"
        assert one_line(result.stderr).startswith(f"microblog: {variable}:"), where
    assert not list(workdir.iterdir()), "nothing started, nothing written"


def test_unreachable_database_exits_1_naming_the_host_not_the_password(
    launcher: Launcher, workdir: Path
):
    closed = free_port()
    env = launcher.pyz.env(DATABASE_URL=f"postgresql://user:topsecret@127.0.0.1:{closed}/x")
    commands = [["web", "--port", str(free_port())], ["migrate"]]
    for args, result in zip(
        commands, launcher.run_all([(args, env) for args in commands], cwd=workdir), strict=True
    ):
        assert result.returncode == 1, f"{args}: {result.stderr}"
        line = one_line(result.stderr)
        assert f"127.0.0.1:{closed}" in line, line
        assert "topsecret" not in result.stderr + result.stdout


def test_busy_port_exits_2_with_one_line_naming_the_address(
    launcher: Launcher, workdir: Path, fresh_database: str
):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = launcher.pyz.env(DATABASE_URL=fresh_database)
        result = launcher.run(["web", "--port", str(port)], cwd=workdir, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after the log lines of the migration
    assert last == f"microblog: cannot listen on 127.0.0.1:{port}: Address already in use"


def _schema_migrations(url: str) -> list[str]:
    async def fetch() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT version FROM schema_migrations")
        finally:
            await conn.close()
        return sorted(row["version"] for row in rows)  # sorted here: no collation surprises

    return asyncio.run(fetch())


def test_concurrent_migrate_applies_each_version_once(
    launcher: Launcher, workdir: Path, fresh_database: str
):
    env = launcher.pyz.env(DATABASE_URL=fresh_database)
    results = launcher.run_all([(["migrate"], env)] * 3, cwd=workdir)
    for result in results:
        assert result.returncode == 0, result.stderr
    applied = re.findall(r"^applied (\S+)$", "".join(r.stdout for r in results), re.MULTILINE)
    assert applied, "one of them applied the migrations"
    assert len(applied) == len(set(applied)), f"a version was applied twice: {applied}"
    assert _schema_migrations(fresh_database) == sorted(applied)

    again = launcher.run(["migrate"], cwd=workdir, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "the schema is up to date"


def test_production_refuses_an_unmigrated_database_until_migrate(
    launcher: Launcher, workdir: Path, fresh_database: str
):
    env = launcher.pyz.env(
        MICROBLOG_ENV="production", DATABASE_URL=fresh_database, SECRET_KEY_BASE=SECRET
    )
    refused = launcher.run(["web", "--port", str(free_port())], cwd=workdir, env=env)
    assert refused.returncode == 1, refused.stderr
    line = one_line(refused.stderr)
    assert "microblog migrate" in line, line

    migrated = launcher.run(["migrate"], cwd=workdir, env=env)
    assert migrated.returncode == 0, migrated.stderr
    web = launcher.web(cwd=workdir, env=env)
    with web.client() as visitor:
        response = visitor.http.get("/up")
        assert response.status_code == 200
    assert web.stop() == 0, web.describe()


def test_db_prints_its_url_and_exits_zero_on_sigterm(launcher: Launcher, workdir: Path):
    stdout = workdir.parent / "db.stdout"
    db = launcher.start(["db"], cwd=workdir, stdout=stdout)
    deadline = time.monotonic() + 60
    while not stdout.read_text().endswith("\n"):
        assert db.popen.poll() is None, db.describe()
        assert time.monotonic() < deadline, f"no URL printed within 60s: {db.describe()}"
        time.sleep(0.05)
    url = stdout.read_text().strip()
    assert url.startswith("postgresql://"), url

    async def ask() -> int:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    assert asyncio.run(ask()) == 1
    assert db.stop() == 0, db.describe()
    assert not (workdir / "var" / "pgdata" / "postmaster.pid").exists(), "the server stopped"
