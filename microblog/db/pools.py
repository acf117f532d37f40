"""The one place that opens connection pools, for every run mode and for the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import asyncpg

from microblog.config import Settings
from microblog.db.embedded import EmbeddedServer, open_embedded_database

CONNECT_TIMEOUT = 5.0


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached; the message names the server, never the password."""


@dataclass(frozen=True)
class Pools:
    """Every pool a process needs. Roles that share a database share one pool object."""

    primary: asyncpg.Pool
    queue: asyncpg.Pool
    cache: asyncpg.Pool
    # Listeners keep a connection of their own outside the pools.
    primary_url: str
    queue_url: str
    # Without DATABASE_URL: the embedded server they are on.
    embedded: EmbeddedServer | None = None


def describe_url(url: str) -> str:
    """host:port/database of a PostgreSQL URL, safe to print (no user, no password)."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"


async def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedServer | None]:
    """DATABASE_URL, or the URL of the embedded server, started on first use."""
    if settings.database_url:
        return settings.database_url, None
    embedded = await open_embedded_database(settings.data_dir)
    return embedded.url, embedded


class acquire:
    """pool.acquire(timeout=...) at a fraction of the cost.

    On Python 3.11 asyncpg bounds the wait with asyncio.wait_for, which starts a task for
    every acquisition, measurable on requests that take several connections. Here a free
    connection is taken with no timer at all (nothing can take it first: there is no await
    between the check and the take), and only a wait for a busy pool is bounded, by a timeout
    context. A connection that arrives just as the timer fires goes back.
    """

    __slots__ = ("conn", "pool", "wait")

    def __init__(self, pool: asyncpg.Pool, wait: float) -> None:
        self.pool, self.wait, self.conn = pool, wait, None

    async def __aenter__(self) -> asyncpg.Connection:
        if self.pool.get_idle_size() > 0:
            self.conn = await self.pool.acquire()
            return self.conn
        try:
            async with asyncio.timeout(self.wait):
                self.conn = await self.pool.acquire()
        except TimeoutError:
            if self.conn is not None:
                await self.pool.release(self.conn)
            raise
        return self.conn

    async def __aexit__(self, *exc_info: object) -> None:
        await self.pool.release(self.conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Returning a connection to its pool costs no round trip.

    asyncpg's default reset sends "RESET ALL; UNLISTEN *; CLOSE ALL; ..." every time a
    connection goes back to the pool. Nothing here leaves session state behind: advisory locks
    are released in `finally`, settings are SET LOCAL, LISTEN uses a connection of its own,
    and an open transaction is rolled back by asyncpg regardless of this hook.
    """


@asynccontextmanager
async def open_pool(url: str, *, size: int, application_name: str) -> AsyncIterator[asyncpg.Pool]:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=size,
            timeout=CONNECT_TIMEOUT,
            server_settings={
                "application_name": application_name[:63],
                # Every statement is prepared once per connection; plan it once too. The
                # default re-plans each execution whenever a custom plan looks cheaper, which
                # costs as much as running most of our statements; the generic plans of the
                # hot statements are checked by tests/test_timeline_plans.py.
                "plan_cache_mode": "force_generic_plan",
            },
            reset=_keep_session,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        reason = str(error) or type(error).__name__
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {describe_url(url)}: {reason}"
        ) from None
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def open_pools(settings: Settings, *, application_name: str) -> AsyncIterator[Pools]:
    """One pool per distinct database: roles that share a URL share the pool."""
    url, embedded = await resolve_database_url(settings)
    queue_url = settings.queue_database_url or url
    cache_url = settings.cache_database_url or url
    async with AsyncExitStack() as stack:
        by_url: dict[str, asyncpg.Pool] = {}
        for role_url in (url, queue_url, cache_url):
            if role_url not in by_url:
                by_url[role_url] = await stack.enter_async_context(
                    open_pool(
                        role_url, size=settings.db_pool_size, application_name=application_name
                    )
                )
        yield Pools(
            primary=by_url[url],
            queue=by_url[queue_url],
            cache=by_url[cache_url],
            primary_url=url,
            queue_url=queue_url,
            embedded=embedded,
        )
