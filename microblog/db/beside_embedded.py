"""What the processes that run beside the embedded primary share (`db --replica`,
`db --pgbouncer`): waiting for the primary to take connections, publishing a URL in the data
folder, and giving way to a stop signal at any point."""

from __future__ import annotations

import asyncio
import fcntl
import sys
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import asyncpg

from microblog.db.outage import CONNECT_ERRORS
from microblog.db.standby import PostmasterFile, StandbyError

POLL_INTERVAL = 0.2
T = TypeVar("T")


async def wait_for_primary(pgdata: Path) -> PostmasterFile:
    """The embedded primary once it takes connections (`db`, `web` or any command starts it)."""
    said = False
    while True:
        found = PostmasterFile.read(pgdata)
        if found is not None and found.status == "ready" and found.alive():
            try:
                conn = await asyncpg.connect(primary_url(found), timeout=5)
            except CONNECT_ERRORS:
                pass
            else:
                await conn.close()
                return found
        if not said:
            print(f"waiting for the embedded database in {pgdata} to start", file=sys.stderr)
            said = True
        await asyncio.sleep(POLL_INTERVAL)


def primary_url(primary: PostmasterFile, database: str = "postgres") -> str:
    return f"postgresql://postgres@/{database}?host={primary.socket_dir}&port={primary.port}"


@contextmanager
def the_only_one(folder: Path, command: str) -> Iterator[None]:
    """Held while this process runs `command` from `folder`; a second one is refused."""
    with (folder / "lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StandbyError(f"another `{command}` is running from {folder}") from None
        yield


def write_atomically(path: Path, text: str) -> None:
    """Readers of `path` find it whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """The result of `work`, or None if a stop signal came first (`work` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()  # and wait for it to clean up after itself
            with suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
