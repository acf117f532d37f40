"""`microblog jobs stats|failed|retry|discard`: the queue from the operator's shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from microblog.cli.common import add_command
from microblog.config import Settings
from microblog.db.pools import open_pools
from microblog.jobs import admin, processes


def _run(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    async def run() -> int:
        async with (
            open_pools(settings, application_name="microblog jobs") as pools,
            pools.queue.acquire() as conn,
        ):
            return await action(conn)

    return asyncio.run(run())


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    async def show(conn: asyncpg.Connection) -> int:
        rows = await admin.depth(conn)
        print(f"{'queue':<16} {'state':<10} {'count':>8}  oldest due")
        for row in rows:
            print(f"{row.queue:<16} {row.state:<10} {row.count:>8}  {_age(row.oldest_due_seconds)}")
        if not rows:
            print("(no jobs waiting, running or failed)")
        # Pending jobs with nobody to run them is the commonest surprise: say who is there.
        takers = await processes.job_takers(conn, settings.heartbeat_timeout)
        if takers:
            names = ", ".join(f"{p.name} ({p.role}, pid {p.pid} on {p.hostname})" for p in takers)
            print(f"\ntaking jobs: {names}")
        else:
            print(f"\n{processes.NO_JOB_TAKER}")
        return 0

    return _run(settings, show)


def _failed(settings: Settings, args: argparse.Namespace) -> int:
    async def show(conn: asyncpg.Connection) -> int:
        jobs = await admin.failed(conn, args.limit, kind=args.kind)
        for job in jobs:
            error = (job.last_error or "").splitlines()[0] if job.last_error else ""
            print(f"{job.id}\t{job.queue}\t{job.kind}\tattempts={job.attempts}\t{error}")
        if not jobs:
            print("(no failed jobs)")
        return 0

    return _run(settings, show)


def _retry(settings: Settings, args: argparse.Namespace) -> int:
    if not _one_or_all(args):
        return 2

    async def retry(conn: asyncpg.Connection) -> int:
        if args.all:
            count = await admin.retry_matching(conn, args.kind)
        else:
            count = int(await admin.retry(conn, args.id))
        print(f"retried {count} job{'s' if count != 1 else ''}")
        if args.id is not None and not count:
            print(f"microblog: job {args.id} is not a failed job", file=sys.stderr)
            return 1
        return 0

    return _run(settings, retry)


def _one_or_all(args: argparse.Namespace) -> bool:
    """A job ID, or --all (optionally with --kind); says what is wrong when not."""
    if (args.id is None) == (not args.all):
        print("microblog: give a job ID or --all", file=sys.stderr)
        return False
    if args.kind is not None and not args.all:
        print("microblog: --kind goes with --all", file=sys.stderr)
        return False
    return True


def _discard(settings: Settings, args: argparse.Namespace) -> int:
    if not _one_or_all(args):
        return 2

    async def discard(conn: asyncpg.Connection) -> int:
        if args.all:
            count = await admin.discard_matching(conn, args.kind)
            print(f"discarded {count} job{'s' if count != 1 else ''}")
            return 0
        if await admin.discard(conn, args.id):
            print(f"discarded job {args.id}")
            return 0
        print(f"microblog: job {args.id} is not a failed or pending job", file=sys.stderr)
        return 1

    return _run(settings, discard)


def add_jobs_commands(commands: Any) -> None:
    jobs = add_command(commands, "jobs", None, "inspect and act on the job queue")
    actions = jobs.add_subparsers(title="actions", metavar="ACTION", required=True)
    add_command(
        actions, "stats", _stats, "jobs waiting, running and failed per queue, and the oldest due"
    )
    failed = add_command(actions, "failed", _failed, "the most recent failed jobs")
    failed.add_argument("--limit", type=int, default=50, help="how many to list (50)")
    failed.add_argument("--kind", help="only failed jobs of this kind")
    retry = add_command(actions, "retry", _retry, "run failed jobs again")
    retry.add_argument("id", type=int, nargs="?", help="the failed job to retry")
    retry.add_argument("--all", action="store_true", help="retry every failed job")
    retry.add_argument("--kind", help="with --all: only failed jobs of this kind")
    discard = add_command(actions, "discard", _discard, "give up on a failed or pending job")
    discard.add_argument("id", type=int, nargs="?", help="the job to discard")
    discard.add_argument("--all", action="store_true", help="discard every failed job")
    discard.add_argument("--kind", help="with --all: only failed jobs of this kind")
