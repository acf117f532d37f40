"""The .pyz and its embedded PostgreSQL work under root and under an ordinary account.

The rest of the suite runs as whoever runs it; this test runs the .pyz as the other kind of
account: an unprivileged system user when the suite runs as root (PostgreSQL then runs as that
user, not as pgserver's), or the current user otherwise.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import READY_TIMEOUT, STOP_TIMEOUT, Pyz, free_port, tail

pytestmark = pytest.mark.process

ACCOUNT = "microblog-e2e"


def _interpreter_for_others() -> str:
    """A Python of the same version that other accounts may execute: the suite's own may live
    in root's home (pyenv), which ordinary accounts cannot enter."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (shutil.which(version, path="/usr/local/bin:/usr/bin"), sys.executable):
        if candidate and os.access(candidate, os.X_OK) and not candidate.startswith("/root/"):
            return candidate
    pytest.fail(f"no {version} outside /root that an ordinary account could run")


def _ordinary_account(home: Path) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(ACCOUNT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", str(home), ACCOUNT],
            check=True,
        )
        return pwd.getpwnam(ACCOUNT)


def test_the_pyz_runs_under_the_other_kind_of_account(pyz: Pyz, scratch_dir: Path):
    folder = scratch_dir / "account"
    folder.mkdir()
    folder.chmod(0o755)
    scratch_dir.chmod(0o755)
    scratch_dir.parent.chmod(0o755)
    artifact = folder / "microblog.pyz"
    shutil.copy(pyz.path, artifact)
    cwd, home = folder / "cwd", folder / "home"
    cwd.mkdir()
    home.mkdir()
    as_root = os.geteuid() == 0
    account = _ordinary_account(home) if as_root else pwd.getpwuid(os.geteuid())
    if as_root:
        for path in (cwd, home):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "SHIV_ROOT": str(home / ".shiv"),
        "LANG": "C.UTF-8",
    }
    log = folder / "web.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(
            [_interpreter_for_others(), str(artifact), "web", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            user=account.pw_uid if as_root else None,
            group=account.pw_gid if as_root else None,
            extra_groups=[] if as_root else None,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT * 2  # unpacking the pyz comes first
        while True:
            assert popen.poll() is None, f"exited with {popen.returncode}: {tail(log)}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/up", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready: {tail(log)}"
            time.sleep(0.1)
        postgres = subprocess.run(
            ["ps", "-o", "user=", "-C", "postgres"], capture_output=True, text=True, check=False
        ).stdout.split()
        expected_owner = account.pw_name
        assert expected_owner in postgres or str(account.pw_uid) in postgres, postgres
        assert (cwd / "var" / "secret_key").exists()
    finally:
        popen.send_signal(signal.SIGTERM)
        status = popen.wait(STOP_TIMEOUT)
    assert status == 0, tail(log)
