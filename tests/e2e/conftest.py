"""End-to-end fixtures: the real microblog.pyz, built once, run as real processes on real ports.

Every process starts in a temporary working directory (never the repository) with an
environment cleaned of the app's settings, so only what a test sets reaches the app. Its
stderr goes to a file that failure messages quote. Teardown stops what is still running with
SIGTERM and expects exit status 0 within STOP_TIMEOUT, and no traceback in any log.

Run them alone with `pytest -m process`, or skip them with `pytest -m "not process"`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import asyncpg
import httpx
import pytest

from microblog.config import documented_variables
from tests.conftest import SHARED_FOLDER
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 180.0
READY_TIMEOUT = 60.0  # the first start in a fresh data folder runs initdb
STOP_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0
PASSWORD = "correct horse battery"


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


@dataclass
class Pyz:
    """The built artifact, what the build printed, and how to run it."""

    path: Path
    shiv_root: Path
    build_output: str = ""

    def command(self, *args: str) -> list[str]:
        # Run with this interpreter: the .pyz carries compiled wheels (asyncpg, argon2) built
        # for it, and `python3` on PATH may be another version.
        return [sys.executable, str(self.path), *args]

    def env(self, **overrides: str) -> dict[str, str]:
        """The inherited environment without any app setting, plus overrides."""
        settings = {variable for variable, _ in documented_variables()}
        env = {k: v for k, v in os.environ.items() if k not in settings}
        env.update(SHIV_ROOT=str(self.shiv_root), PYTHONUNBUFFERED="1", **overrides)
        return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    stderr_path: Path
    stopped: bool = False

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self, lines: int = 40) -> str:
        return f"{self.name} (pid {self.popen.pid}); its stderr ends with:\n" + tail(
            self.stderr_path, lines
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then the exit status; a process that hangs is killed and fails the test."""
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"no exit within {timeout}s of SIGTERM: {self.describe()}")


@dataclass
class WebProcess(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll GET /up until it answers 200; fail early if the process dies or errs.

        Not listening yet and 503 (booting, database not answering) are worth waiting for;
        any other answer is a bug that waiting will not fix.
        """
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    pytest.fail(
                        f"exited with {self.popen.returncode} before ready: {self.describe()}"
                    )
                try:
                    status = client.get("/up").status_code
                except httpx.TransportError:
                    status = None
                if status == 200:
                    return
                if status not in (None, 503):
                    pytest.fail(f"/up answered {status}: {self.describe()}")
                time.sleep(0.05)
        pytest.fail(f"/up did not answer 200 within {timeout}s: {self.describe()}")

    def client(self, **kwargs) -> Visitor:
        return Visitor(httpx.Client(base_url=self.url, timeout=10.0, **kwargs))


class Launcher:
    """Starts processes from the .pyz and stops whatever is left at teardown."""

    def __init__(self, pyz: Pyz, logs: Path) -> None:
        self.pyz = pyz
        self.logs = logs
        self.started: list[Process] = []

    def _log_path(self, name: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{len(self.started):02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"

    def start(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        stdout: Path | None = None,
    ) -> Process:
        """Start a long-running command; stdout goes to a file when given, else nowhere."""
        cwd.mkdir(parents=True, exist_ok=True)
        name = " ".join(args)
        stderr_path = self._log_path(name)
        out = stdout.open("wb") if stdout else subprocess.DEVNULL
        try:
            with stderr_path.open("wb") as stderr:
                popen = subprocess.Popen(
                    self.pyz.command(*args),
                    cwd=cwd,
                    env=dict(env or self.pyz.env()),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=stderr,
                )
        finally:
            if stdout:
                out.close()  # the child has its own copy
        process = Process(name, popen, stderr_path)
        self.started.append(process)
        return process

    def web(
        self,
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        wait: bool = True,
        mode: str = "web",
    ) -> WebProcess:
        """A process serving HTTP: `web`, or `combined` (web and jobs in one process)."""
        port = port or free_port()
        started = self.start([mode, "--port", str(port)], cwd=cwd, env=env)
        web = WebProcess(started.name, started.popen, started.stderr_path, port=port)
        self.started[-1] = web
        if wait:
            web.wait_ready()
        return web

    def run(
        self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion and return its status and output."""
        cwd.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            self.pyz.command(*args),
            cwd=cwd,
            env=dict(env or self.pyz.env()),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def run_all(
        self, commands: Sequence[tuple[Sequence[str], Mapping[str, str]]], *, cwd: Path
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run several commands at the same time; their results in the same order."""
        cwd.mkdir(parents=True, exist_ok=True)
        running = [
            (
                args,
                subprocess.Popen(
                    self.pyz.command(*args),
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for args, env in commands
        ]
        results = []
        for args, popen in running:
            try:
                out, err = popen.communicate(timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                popen.kill()
                out, err = popen.communicate()
            results.append(subprocess.CompletedProcess(args, popen.returncode, out, err))
        return results

    def stop_all(self) -> None:
        """Stop every process the test left running: each must exit 0 on SIGTERM, and no
        process may have logged a traceback."""
        problems = []
        for process in reversed(self.started):
            if process.stopped:
                continue
            status = process.stop()
            if status != 0:
                problems.append(f"exit status {status}: {process.describe()}")
        for process in self.started:
            if "Traceback" in process.stderr:
                problems.append(f"a traceback was logged: {process.describe(lines=200)}")
        assert not problems, "\n\n".join(problems)


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    """A folder for everything the embedded PostgreSQL must reach, outside pytest's basetemp.

    As root, PostgreSQL runs as its own user and needs its data folder reachable (and its
    binaries, unpacked under SHIV_ROOT in the run's shared folder, made the same way); pytest
    tightens /tmp/pytest-of-<user> back to 0700 whenever another session starts, which would
    cut running servers off from both.
    """
    folder = Path(tempfile.mkdtemp(prefix="microblog-e2e-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_checkout(destination: Path) -> Path:
    """The repository's files as a fresh clone has them, plus uncommitted changes: no venv,
    no build/ folder (so the build fetches its tools as it does on a new machine), no var/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="session")
def pyz() -> Pyz:
    """microblog.pyz, built once per run (the first worker to ask builds it, the others wait)
    from a fresh checkout, and unpacked once.

    Built as the README says, by the machine's python3 outside any virtual environment (pip
    behaves differently inside one), of the version running the tests: the .pyz carries
    compiled wheels for it.
    """
    shared = Path(os.environ[SHARED_FOLDER])
    built = Pyz(path=shared / "microblog.pyz", shiv_root=shared / "shiv")
    # Written last, so it also says the build worked and was unpacked.
    printed = shared / "build-output.txt"
    with open(shared / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not printed.exists():
            printed.write_text(_build(built))
    built.build_output = printed.read_text()
    return built


def _build(built: Pyz) -> str:
    """Build the .pyz and unpack it; what the build printed."""
    python = Path(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    build = subprocess.run(
        [str(python), "build.py", "--output", str(built.path)],
        cwd=fresh_checkout(built.path.parent / "checkout"),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert build.returncode == 0, f"build failed:\n{build.stdout}\n{build.stderr}"
    # The first run unpacks the dependencies into SHIV_ROOT; do it now, not in a timed test.
    unpack = subprocess.run(
        built.command("--version"),
        cwd=built.path.parent,
        env=built.env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert unpack.returncode == 0, unpack.stderr
    return build.stdout + build.stderr


@pytest.fixture
def launcher(pyz: Pyz, tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(pyz, tmp_path / "logs")
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def scratch_dir(scratch: Path) -> Path:
    """This test's own folder in the scratch area (working directories, data folders)."""
    return Path(tempfile.mkdtemp(dir=scratch, prefix="test-"))


@pytest.fixture
def workdir(scratch_dir: Path) -> Path:
    """A working directory outside the repository for the processes of this test."""
    folder = scratch_dir / "cwd"
    folder.mkdir()
    return folder


async def fetch_rows(url: str, sql: str, *args) -> list[asyncpg.Record]:
    """Rows of one query, on a connection of its own (the processes under test hold theirs)."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def fetch_value(url: str, sql: str, *args):
    """The first column of the first row, from synchronous test code."""
    return asyncio.run(fetch_rows(url, sql, *args))[0][0]


def wait_for(
    check,
    what: str,
    popen: subprocess.Popen | None = None,
    within: float = 60,
    every: float = 0.05,
) -> None:
    """Poll check() every `every` seconds until it holds; fail when `within` seconds pass or
    popen exits first. Checks that are requests to the app count against its rate limits:
    space them out."""
    deadline = time.monotonic() + within
    while not check():
        if popen is not None and popen.poll() is not None:
            pytest.fail(f"{what} exited with {popen.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {within}s")
        time.sleep(every)


# --- HTML forms, read the way a browser without JavaScript reads them ---


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = Form(values.get("action", ""), values.get("method", "get").lower())
            self.forms.append(self._open)
        elif tag in ("input", "textarea") and self._open is not None and "name" in values:
            self._open.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


@dataclass
class Visitor:
    """A browser without JavaScript: an httpx client with a cookie jar that submits forms."""

    http: httpx.Client

    def page(self, path: str) -> str:
        response = self.http.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code}"
        return response.text

    def submit(self, path: str, action: str, **values: str) -> httpx.Response:
        """Fill in the form posting to `action` on the page at `path` and send it."""
        found = [f for f in forms(self.page(path)) if f.action == action]
        assert found, f"no form posting to {action} on {path}"
        data = {**found[0].fields, **values}
        assert data.get("csrf_token"), f"the form posting to {action} has no csrf_token"
        return self.http.post(action, data=data)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Visitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def sign_up(visitor: Visitor, username: str) -> None:
    response = visitor.submit("/signup", "/signup", username=username, password=PASSWORD)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
