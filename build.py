#!/usr/bin/env python3
"""Build ./microblog.pyz: the app, its templates, static files and dependencies in one file.

    python3 build.py [--output PATH]

Needs only python3 with pip: shiv is fetched into build/tools when it is not installed.
The result runs from any working directory: ./microblog.pyz combined --port 3001
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / "build" / "tools"


def shiv_command() -> tuple[list[str], dict[str, str]]:
    """How to run shiv: the installed one, or one fetched into build/tools."""
    env = dict(os.environ)
    try:
        import shiv  # noqa: F401
    except ImportError:
        if not (TOOLS / "shiv").is_dir():
            print("fetching shiv into build/tools ...", flush=True)
            subprocess.run(
                [
                    sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TOOLS),
                    "--disable-pip-version-check", "--root-user-action=ignore", "shiv",
                ],
                check=True,
            )  # fmt: skip
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOLS), env.get("PYTHONPATH")]))
    return [sys.executable, "-m", "shiv"], env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "microblog.pyz")
    args = parser.parse_args()

    command, env = shiv_command()
    output = args.output.resolve()
    print(f"building {output} ...", flush=True)
    result = subprocess.run(
        [
            *command,
            "--output-file", str(output),
            "--entry-point", "microblog.cli:main",
            "--python", "/usr/bin/env python3",
            "--reproducible",
            "--compressed",
            # the rest goes to pip, which installs this project and its dependencies
            "--quiet", "--disable-pip-version-check", "--root-user-action=ignore", str(ROOT),
        ],
        env=env,
    )  # fmt: skip
    if result.returncode != 0:
        print("build failed: see the pip/shiv output above", file=sys.stderr)
        return 1
    print(f"built {output} ({output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
