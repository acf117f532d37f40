"""LISTEN on a connection of its own, reconnecting whenever it drops.

PostgreSQL delivers a notification only to sessions listening when it is sent, so whoever
listens is told when listening starts (everything before may have been missed) and when the
connection is lost (everything until it is back will be). One connection carries every channel
a process listens to on one server: each channel is a `Channel` with its own callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from microblog.db.outage import DATABASE_OUTAGE

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0
# A silently dead connection (a network partition) raises no event: probe it this often.
PROBE_INTERVAL = 5.0


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class Channel:
    """A channel to listen to, and what to call: for every notification on it (with its
    payload), once listening has started, and once the connection is lost."""

    name: str
    on_notify: Callable[[str], None]
    on_listening: Callable[[], None] = _nothing
    on_lost: Callable[[], None] = _nothing


async def listen(url: str, channels: Sequence[Channel], stop: asyncio.Event, *, name: str) -> None:
    """Listen to every channel on one connection until stop is set."""
    while not stop.is_set():
        conn = None
        try:
            conn = await asyncpg.connect(
                url, timeout=5, server_settings={"application_name": f"microblog {name}"}
            )
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            for channel in channels:
                await conn.add_listener(
                    channel.name, lambda *event, channel=channel: channel.on_notify(event[3])
                )
            for channel in channels:
                channel.on_listening()
            while not (stop.is_set() or lost.is_set()):
                try:
                    async with asyncio.timeout(PROBE_INTERVAL):
                        await until_either(stop, lost)
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=5)
            if lost.is_set() and not stop.is_set():
                log.warning("listener connection lost; reconnecting", extra={"listener": name})
        except DATABASE_OUTAGE as error:
            log.warning(
                "listener connection failed; retrying",
                extra={"listener": name, "error": f"{type(error).__name__}"},
            )
            try:
                async with asyncio.timeout(RECONNECT_DELAY):
                    await stop.wait()
            except TimeoutError:
                pass
        finally:
            for channel in channels:
                channel.on_lost()
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)


async def until_either(first: asyncio.Event, second: asyncio.Event) -> None:
    """Return once either event is set."""
    waiters = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
