"""Every benchmark command starts: its options parse and its imports resolve. A benchmark that
only runs on a quiet machine, by hand, otherwise breaks unseen when the code beside it moves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
COMMANDS = sorted(
    path.name for path in BENCH.glob("*.py") if 'if __name__ == "__main__":' in path.read_text()
)


def test_the_benchmarks_are_found():
    assert {"scale.py", "replica.py", "events.py", "metrics.py", "jobs.py"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_benchmark_answers_help(command):
    done = subprocess.run(
        [sys.executable, str(BENCH / command), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:"), done.stdout
