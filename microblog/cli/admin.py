"""`microblog admin grant|revoke USERNAME`: who may open the operators' console at /admin.

Nobody is an operator until granted, not even the first account: the console shows the
whole site's machinery and acts on it, which no sign-up should bring by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from microblog.admin import queries
from microblog.cli.common import add_command
from microblog.config import Settings
from microblog.db.pools import open_pools

Change = Callable[[asyncpg.Connection, str], Awaitable[str | None]]


def _change(settings: Settings, username: str, change: Change, action: str) -> int:
    async def run() -> str | None:
        async with (
            open_pools(settings, application_name="microblog admin") as pools,
            pools.primary.acquire() as conn,
            conn.transaction(),
        ):
            found = await change(conn, username)
            if found is not None:
                await queries.record(conn, None, queries.COMMAND_LINE, action, found)
            return found

    found = asyncio.run(run())
    if found is None:
        print(f"microblog: there is no account called {username!r}", file=sys.stderr)
        return 1
    print(f"{found} {'is now' if change is queries.grant else 'is no longer'} an operator")
    return 0


def grant(settings: Settings, args: argparse.Namespace) -> int:
    return _change(settings, args.username, queries.grant, "grant operator")


def revoke(settings: Settings, args: argparse.Namespace) -> int:
    return _change(settings, args.username, queries.revoke, "revoke operator")


def add_admin_commands(commands: Any) -> None:
    admin = add_command(commands, "admin", None, "choose who operates the console at /admin")
    actions = admin.add_subparsers(title="actions", metavar="ACTION", required=True)
    granting = add_command(actions, "grant", grant, "make an account an operator of /admin")
    granting.add_argument("username", help="the account's username")
    revoking = add_command(actions, "revoke", revoke, "make an operator an ordinary account")
    revoking.add_argument("username", help="the account's username")
