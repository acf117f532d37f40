"""LISTEN on a connection of its own, reconnecting whenever it drops.

PostgreSQL delivers a notification only to sessions listening when it is sent, so whoever
listens is told when listening starts (everything before may have been missed) and when the
connection is lost (everything until it is back will be).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from microblog.db.outage import DATABASE_OUTAGE

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0
# A silently dead connection (a network partition) raises no event: probe it this often.
PROBE_INTERVAL = 5.0


def _nothing() -> None:
    pass


async def listen(
    url: str,
    channel: str,
    on_notify: Callable[[str], None],
    stop: asyncio.Event,
    *,
    name: str,
    on_listening: Callable[[], None] = _nothing,
    on_lost: Callable[[], None] = _nothing,
) -> None:
    """Call on_notify(payload) for every notification on channel until stop is set."""
    while not stop.is_set():
        conn = None
        try:
            conn = await asyncpg.connect(
                url, timeout=5, server_settings={"application_name": f"microblog {name}"}
            )
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(channel, lambda *event: on_notify(event[3]))
            on_listening()
            while not (stop.is_set() or lost.is_set()):
                try:
                    async with asyncio.timeout(PROBE_INTERVAL):
                        await _until_either(stop, lost)
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
            on_lost()
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)


async def _until_either(first: asyncio.Event, second: asyncio.Event) -> None:
    waiters = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
