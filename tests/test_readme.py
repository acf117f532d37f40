"""The README's promises: its test command is what CI runs, its settings exist."""

from __future__ import annotations

import re
from pathlib import Path

from microblog.config import documented_variables

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def command_after(heading: str) -> str:
    """The shell command in the first ```sh block of the README section `heading`."""
    section = README.split(f"## {heading}", 1)[1]
    return re.search(r"```sh\n(.+?)\n```", section, flags=re.DOTALL).group(1).strip()


def test_ci_runs_the_readme_test_command_verbatim():
    command = command_after("Test it")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_the_readme_run_command_builds_and_starts_the_app():
    command = command_after("Run it")
    assert command.startswith("python3 build.py && ./microblog.pyz ")


def test_the_readme_configuration_table_names_only_real_settings():
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Z_]+)`", section))
    assert named, "the configuration table is empty"
    assert named <= {variable for variable, _ in documented_variables()}
