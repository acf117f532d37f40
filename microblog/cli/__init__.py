"""The command line: ./microblog.pyz <command> (the same as python -m microblog <command>).

Start-up problems end in one line on stderr naming what is wrong, never a traceback:
exit status 2 for bad settings or arguments, 1 for an unreachable database or the like.
Each group of commands lives beside this file: serve.py, database.py, jobs.py, admin.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from microblog import __version__
from microblog.cli.admin import add_admin_commands
from microblog.cli.common import CommandError
from microblog.cli.database import add_db_and_seed_commands, add_migrate_command
from microblog.cli.jobs import add_jobs_commands
from microblog.cli.serve import add_serve_commands
from microblog.config import Settings, SettingsError
from microblog.db.migrate import OutdatedSchema
from microblog.db.pools import DatabaseUnavailable
from microblog.db.standby import StandbyError
from microblog.logs import configure_logging
from microblog.signals import catch_early

# Commands that run until stopped; the rest are one-off and stop on Ctrl-C like any program.
LONG_RUNNING = frozenset({"web", "worker", "combined", "db"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microblog",
        description="A server-rendered microblog that runs as many instances as you like.",
    )
    parser.add_argument("--version", action="version", version=f"microblog {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_serve_commands(commands)
    add_migrate_command(commands)
    add_jobs_commands(commands)
    add_db_and_seed_commands(commands)
    add_admin_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command in LONG_RUNNING:
        catch_early()  # a stop signal during start-up still ends in a clean exit
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"microblog: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(
        fmt=settings.effective_log_format,
        level=settings.log_level,
        instance=settings.name_instance(args.command, getattr(args, "port", None) or None),
    )
    try:
        sys.exit(args.handler(settings, args))
    except CommandError as error:
        print(f"microblog: {error}", file=sys.stderr)
        sys.exit(2)
    except (DatabaseUnavailable, OutdatedSchema, StandbyError) as error:
        print(f"microblog: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
