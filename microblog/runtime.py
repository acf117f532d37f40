"""Run modes: the long-running processes, sharing one stop event and one way to open pools.

SIGTERM or SIGINT sets the stop event; everything then drains within SHUTDOWN_TIMEOUT and the
process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from microblog.config import Settings
from microblog.db.migrate import ensure_schema
from microblog.db.pools import Pools, open_pools
from microblog.web.app import create_app

log = logging.getLogger(__name__)


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def prepare_schema(settings: Settings, pools: Pools) -> None:
    """Development migrates on start; production refuses an outdated schema."""
    async with pools.primary.acquire() as conn:
        applied = await ensure_schema(conn, migrate=not settings.is_production)
    for version in applied:
        log.info("migration applied", extra={"version": version})


async def serve_http(
    settings: Settings, pools: Pools, *, host: str, port: int, name: str, stop: asyncio.Event
) -> None:
    draining = asyncio.Event()
    app = create_app(settings, pools, instance_name=name, draining=draining)
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = settings.shutdown_timeout
    config.accesslog = None  # one line per request comes from the app, with its request id
    config.errorlog = logging.getLogger("hypercorn.error")

    async def shutdown_trigger() -> None:
        await stop.wait()
        draining.set()  # /up answers 503 from now on
        log.info("draining", extra={"timeout": settings.shutdown_timeout})

    await serve(app, config, shutdown_trigger=shutdown_trigger)


async def run_web(settings: Settings, *, host: str, port: int, name: str) -> None:
    stop = stop_on_signals()
    async with open_pools(settings, application_name=f"microblog web {name}") as pools:
        await prepare_schema(settings, pools)
        await serve_http(settings, pools, host=host, port=port, name=name, stop=stop)
    log.info("stopped")
