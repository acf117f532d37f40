"""The command line: ./microblog.pyz <command> (the same as python -m microblog <command>).

Start-up problems end in one line on stderr naming what is wrong, never a traceback:
exit status 2 for bad settings or arguments, 1 for an unreachable database or the like.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from microblog import __version__
from microblog.config import (
    Settings,
    SettingsError,
    port_number,
    positive_int,
    queue_names,
    whole_number,
)
from microblog.db.migrate import OutdatedSchema
from microblog.db.pools import DatabaseUnavailable
from microblog.db.standby import StandbyError
from microblog.jobs.commands import add_jobs_commands
from microblog.logs import configure_logging
from microblog.signals import catch_early

Command = Callable[[Settings, argparse.Namespace], int]
# Commands that run until stopped; the rest are one-off and stop on Ctrl-C like any program.
LONG_RUNNING = frozenset({"web", "worker", "combined", "db"})


class CommandError(RuntimeError):
    """A problem the operator can fix; the message says how."""


def _web(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.runtime import run_web

    port = args.port or settings.port
    name = settings.name_instance("web", port)
    _listen_or_explain(
        lambda: run_web(settings, host=args.host, port=port, name=name), args.host, port
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.runtime import run_worker, worker_options

    options = worker_options(settings, args.queues, args.concurrency)
    asyncio.run(run_worker(settings, name=settings.name_instance("worker"), options=options))
    return 0


def _combined(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.runtime import run_combined, worker_options

    port = args.port or settings.port
    name = settings.name_instance("combined", port)
    options = worker_options(settings, None, args.concurrency)
    _listen_or_explain(
        lambda: run_combined(settings, host=args.host, port=port, name=name, options=options),
        args.host,
        port,
    )
    return 0


def _listen_or_explain(start: Callable, host: str, port: int) -> None:
    try:
        asyncio.run(start())
    except OSError as error:
        if error.errno is None or isinstance(error, ConnectionError):
            raise
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.db.migrate import migrate_databases
    from microblog.db.pools import open_pools

    async def migrate() -> list[str]:
        async with open_pools(settings, application_name="microblog migrate") as pools:
            return await migrate_databases(pools)

    applied = asyncio.run(migrate())
    for version in applied:
        print(f"applied {version}")
    if not applied:
        print("the schema is up to date")
    return 0


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.db.migrate import ensure_schema
    from microblog.db.pools import open_pools
    from microblog.seed import DEMO_PASSWORD, SeedPlan, seed

    follows = args.follows if args.follows is not None else args.users * 20
    plan = SeedPlan(users=args.users, posts=args.posts, follows=follows)

    async def run() -> None:
        async with open_pools(settings, application_name="microblog seed") as pools:
            await ensure_schema(pools, migrate=not settings.is_production)
            async with pools.primary.acquire() as conn:
                await seed(conn, plan, progress=sys.stderr.isatty() or args.progress)

    asyncio.run(run())
    print(
        f"seeded {plan.users} users, {plan.posts} posts and up to {plan.follows} follows; "
        f"every demo account's password is {DEMO_PASSWORD!r}"
    )
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    if settings.database_url:
        raise CommandError("DATABASE_URL is set: `db` only runs the embedded server")
    if args.replica:
        from microblog.db.embedded_replica import run_replica_in_foreground

        asyncio.run(run_replica_in_foreground(settings.data_dir))
    else:
        from microblog.db.embedded import run_in_foreground

        asyncio.run(run_in_foreground(settings.data_dir))
    return 0


def _add_command(
    commands: argparse._SubParsersAction, name: str, handler: Command, help: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help, description=help)
    parser.add_argument("--version", action="version", version=f"microblog {__version__}")
    parser.set_defaults(handler=handler, command=name)
    return parser


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_argument(port_number),
        default=None,
        help="port to listen on (default: $PORT, else 3000)",
    )


def _add_concurrency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=_argument(positive_int),
        default=None,
        help="jobs run at the same time (default: $WORKER_CONCURRENCY, else 10)",
    )


T = TypeVar("T")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A setting's parser (microblog.config) as an argparse type: one rule for both ways in."""

    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microblog",
        description="A server-rendered microblog that runs as many instances as you like.",
    )
    parser.add_argument("--version", action="version", version=f"microblog {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    web = _add_command(
        commands, "web", _web, "serve HTTP only (jobs wait for a worker or combined process)"
    )
    _add_listen_options(web)
    worker = _add_command(commands, "worker", _worker, "run background jobs until stopped")
    worker.add_argument(
        "--queues",
        type=_argument(queue_names),
        default=None,
        help="comma-separated queues (default: all)",
    )
    _add_concurrency_option(worker)
    combined = _add_command(
        commands, "combined", _combined, "serve HTTP and run background jobs in one process"
    )
    _add_listen_options(combined)
    _add_concurrency_option(combined)
    _add_command(commands, "migrate", _migrate, "apply pending database migrations")
    add_jobs_commands(commands, _add_command)
    db = _add_command(
        commands, "db", _db, "run the embedded PostgreSQL in the foreground and print its URL"
    )
    db.add_argument(
        "--replica",
        action="store_true",
        help="run a streaming replica of it instead, kept in the data folder",
    )
    seed = _add_command(commands, "seed", _seed, "generate demo or benchmark data")
    seed.add_argument(
        "--users", type=_argument(positive_int), required=True, help="accounts to create"
    )
    seed.add_argument(
        "--posts", type=_argument(positive_int), required=True, help="posts to create"
    )
    seed.add_argument(
        "--follows",
        type=_argument(whole_number),
        default=None,
        help="follows to create (default: 20 per user)",
    )
    seed.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
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
