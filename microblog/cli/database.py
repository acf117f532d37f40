"""`migrate`, `db` and `seed`: the database's schema, the embedded server, demo data."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from microblog.cli.common import CommandError, add_command, argument
from microblog.config import Settings
from microblog.parsers import positive_int, whole_number

# The most active demo accounts, named after seeding.
SHOWN_ACCOUNTS = 3


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
    from microblog.cache.store import Cache
    from microblog.db.migrate import ensure_schema
    from microblog.db.pools import open_pools
    from microblog.duties import transactions_with_duties
    from microblog.seed import DEMO_PASSWORD, SeedPlan, seed
    from microblog.seed_growth import Growth, GrowthError, grow

    if args.grow and (args.users is not None or args.follows is not None):
        raise CommandError("--grow adds posts and readers to the accounts there: no --users")
    if args.grow and not (args.posts or args.readers):
        raise CommandError("--grow needs --posts, --readers or both: what to add")
    if not args.grow and (args.users is None or args.posts is None):
        raise CommandError("seed needs --users and --posts (or --grow, to add to a seeded one)")
    plan = None
    if not args.grow:
        follows = args.follows if args.follows is not None else args.users * 20
        likes = args.likes if args.likes is not None else args.posts
        plan = SeedPlan(users=args.users, posts=args.posts, follows=follows, likes=likes)
    growth = Growth(posts=(args.posts or 0) if args.grow else 0, readers=args.readers)
    progress = sys.stderr.isatty() or args.progress

    async def run() -> None:
        async with open_pools(settings, application_name="microblog seed") as pools:
            await ensure_schema(pools, migrate=not settings.is_production)
            if plan is not None:
                # As a web process writes: what follows the commits (the public page's cache)
                # too.
                transactions = transactions_with_duties(settings, pools, Cache(pools.cache))
                demo = await seed(transactions, pools, plan, progress=progress)
                print(
                    f"seeded {len(demo.user_ids)} users, {len(demo.post_ids)} posts, "
                    f"{demo.likes} likes, {demo.reposts} reposts, {demo.follows} follows, "
                    f"{demo.blocks} blocks and {demo.mutes} mutes; "
                    f"{demo.pictured} posts show pictures"
                )
                names = ", ".join(demo.usernames[:SHOWN_ACCOUNTS])
                print(
                    f"log in as any of them, such as {names}, with the password {DEMO_PASSWORD!r}"
                )
            if growth.posts or growth.readers:
                async with pools.primary.acquire() as conn:
                    print(await grow(conn, growth, progress=progress))
                    print(f"every demo account's password is {DEMO_PASSWORD!r}")

    try:
        asyncio.run(run())
    except GrowthError as error:
        raise CommandError(str(error)) from None
    return 0


def _follow_counts(text: str) -> tuple[int, ...]:
    """How many accounts each reader follows, from "10,100,1000"."""
    return tuple(positive_int(part.strip()) for part in text.split(","))


def _db(settings: Settings, args: argparse.Namespace) -> int:
    if settings.database_url:
        raise CommandError("DATABASE_URL is set: `db` only runs the embedded server")
    if args.replica:
        from microblog.db.embedded_replica import run_replica_in_foreground

        asyncio.run(run_replica_in_foreground(settings.data_dir))
    elif args.pgbouncer:
        from microblog.db.embedded_pooler import run_pgbouncer_in_foreground

        asyncio.run(run_pgbouncer_in_foreground(settings.data_dir))
    else:
        from microblog.db.embedded import run_in_foreground

        asyncio.run(run_in_foreground(settings.data_dir))
    return 0


def add_migrate_command(commands: Any) -> None:
    add_command(commands, "migrate", _migrate, "apply pending database migrations")


def add_db_and_seed_commands(commands: Any) -> None:
    db = add_command(
        commands, "db", _db, "run the embedded PostgreSQL in the foreground and print its URL"
    )
    beside = db.add_mutually_exclusive_group()
    beside.add_argument(
        "--replica",
        action="store_true",
        help="run a streaming replica of it instead, kept in the data folder",
    )
    beside.add_argument(
        "--pgbouncer",
        action="store_true",
        help="run PgBouncer in transaction mode before it instead, and print its URL",
    )
    seed = add_command(commands, "seed", _seed, "generate demo or benchmark data")
    seed.add_argument("--users", type=argument(positive_int), help="accounts to create")
    seed.add_argument(
        "--posts",
        type=argument(positive_int),
        help="posts to create (with --grow: to add, by the accounts already there)",
    )
    seed.add_argument(
        "--follows",
        type=argument(whole_number),
        default=None,
        help="follows to create (default: 20 per user)",
    )
    seed.add_argument(
        "--likes",
        type=argument(whole_number),
        default=None,
        help="likes to create (default: as many as posts)",
    )
    seed.add_argument(
        "--grow",
        action="store_true",
        help="add to an already seeded database instead of creating new accounts",
    )
    seed.add_argument(
        "--readers",
        type=argument(_follow_counts),
        default=(),
        metavar="N,N,...",
        help="a demo account reader_N following N accounts, for each N (made or topped up)",
    )
    seed.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
