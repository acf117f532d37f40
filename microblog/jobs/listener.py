"""LISTEN for enqueued jobs on a connection of its own, reconnecting whenever it drops.

Notifications only make workers faster to react: a worker also polls, so a lost notification
or a listener that is reconnecting delays a job by at most the poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from microblog.jobs.queue import CHANNEL

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0
# A silently dead connection (a network partition) raises no event: probe it this often.
PROBE_INTERVAL = 30.0


async def listen(url: str, on_notify: Callable[[str], None], stop: asyncio.Event) -> None:
    """Call on_notify(queue) for every notification until stop is set."""
    while not stop.is_set():
        conn = None
        try:
            conn = await asyncpg.connect(
                url, timeout=5, server_settings={"application_name": "microblog job listener"}
            )
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(CHANNEL, lambda *event: on_notify(event[3]))
            on_notify("")  # jobs may have arrived while we were not listening
            while not (stop.is_set() or lost.is_set()):
                try:
                    async with asyncio.timeout(PROBE_INTERVAL):
                        await _until_either(stop, lost)
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=5)
            if lost.is_set() and not stop.is_set():
                log.warning("job listener connection lost; reconnecting")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning("job listener cannot connect", extra={"error": f"{type(error).__name__}"})
            try:
                async with asyncio.timeout(RECONNECT_DELAY):
                    await stop.wait()
            except TimeoutError:
                pass
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)


async def _until_either(first: asyncio.Event, second: asyncio.Event) -> None:
    waiters = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
