"""The one place that opens connections to PostgreSQL, for every run mode and for the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import asyncpg

from microblog.config import Settings
from microblog.db.embedded import (
    EmbeddedServer,
    embedded_replica_urls,
    open_embedded_database,
)
from microblog.db.outage import CONNECT_ERRORS
from microblog.db.replicas import Replicas

CONNECT_TIMEOUT = 5.0


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached; the message names the server, never the password."""


@dataclass(frozen=True, repr=False)  # the URLs may carry passwords
class DatabaseUrls:
    """Where each role connects, resolved once per process.

    `primary` (DATABASE_URL) may go through PgBouncer in transaction mode; `direct`
    (DATABASE_DIRECT_URL) is then the primary itself, for the connections that need a session
    of their own: LISTEN and the migrations' advisory lock. The queue, the cache and the
    replicas are used as given.
    """

    primary: str
    direct: str
    queue: str
    cache: str
    replicas: tuple[str, ...]
    # The pooler keeps prepared statements across its server connections (PgBouncer 1.21's
    # max_prepared_statements): the pools keep their statement cache through it.
    pooler_prepares: bool = False

    @property
    def through_pooler(self) -> bool:
        """Pooled connections then keep no state from one transaction to the next."""
        return self.direct != self.primary

    def for_sessions(self, url: str) -> str:
        """Where a connection that needs a session goes instead of `url`."""
        return self.direct if url == self.primary else url


@dataclass(frozen=True)
class Pools:
    """Every pool a process needs. Roles that share a database share one pool object."""

    primary: asyncpg.Pool
    queue: asyncpg.Pool
    cache: asyncpg.Pool
    replicas: Replicas
    urls: DatabaseUrls
    # Without DATABASE_URL: the embedded server they are on.
    embedded: EmbeddedServer | None = None

    # Listeners keep a connection of their own, outside the pools and never through a pooler.
    @property
    def primary_url(self) -> str:
        return self.urls.for_sessions(self.urls.primary)

    @property
    def queue_url(self) -> str:
        return self.urls.for_sessions(self.urls.queue)


def describe_url(url: str) -> str:
    """host:port/database of a PostgreSQL URL, safe to print (no user, no password)."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"


def _unavailable(url: str, error: BaseException) -> DatabaseUnavailable:
    reason = str(error) or type(error).__name__
    if "unsupported startup parameter" in reason:  # PgBouncer's answer to session settings
        reason += " (through PgBouncer, set DATABASE_DIRECT_URL to the server itself)"
    return DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe_url(url)}: {reason}")


async def resolve_database_urls(
    settings: Settings,
) -> tuple[DatabaseUrls, EmbeddedServer | None]:
    """The settings' URLs; without DATABASE_URL, the embedded server's (started on first use)
    and, unless REPLICA_DATABASE_URL says otherwise, the replica `db --replica` made of it;
    and the embedded server, if that is the primary."""
    primary, embedded = settings.database_url, None
    replicas = settings.replica_database_urls
    if not primary:
        embedded = await open_embedded_database(settings.data_dir)
        primary = embedded.url
        replicas = replicas or embedded_replica_urls(settings.data_dir)
    urls = DatabaseUrls(
        primary=primary,
        direct=settings.database_direct_url or primary,
        queue=settings.queue_database_url or primary,
        cache=settings.cache_database_url or primary,
        replicas=replicas,
        pooler_prepares=settings.pooler_prepared_statements,
    )
    return urls, embedded


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
    are transaction-scoped, settings are SET LOCAL, LISTEN and migrations use connections of
    their own, and an open transaction is rolled back by asyncpg regardless of this hook.
    """


@asynccontextmanager
async def open_pool(
    url: str,
    *,
    size: int,
    application_name: str,
    through_pooler: bool = False,
    pooler_prepares: bool = False,
    lazy: bool = False,
) -> AsyncIterator[asyncpg.Pool]:
    """A pool of up to `size` connections; `lazy` opens none until the first is wanted, so a
    server that is down (a replica) does not stop the process from starting."""
    server_settings = {"application_name": application_name[:63]}
    if not through_pooler:
        # Every statement is prepared once per connection; plan it once too. The default
        # re-plans each execution whenever a custom plan looks cheaper, which costs as much as
        # running most of our statements; the generic plans of the hot statements are checked
        # by tests/test_timeline_plans.py. PgBouncer refuses this startup parameter, and its
        # server connections are shared: there it is a setting of the role (docs/scaling.md).
        server_settings["plan_cache_mode"] = "force_generic_plan"
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=0 if lazy else 1,
            max_size=size,
            timeout=CONNECT_TIMEOUT,
            server_settings=server_settings,
            # Named prepared statements live in one server session, which a transaction-mode
            # pooler hands to another client after every transaction, unless the pooler
            # prepares them again wherever they run (PgBouncer 1.21 and later). Without the
            # cache, asyncpg sends each statement unnamed, parsed again in the round trip that
            # runs it.
            statement_cache_size=100 if pooler_prepares or not through_pooler else 0,
            reset=_keep_session,
        )
    except CONNECT_ERRORS as error:
        raise _unavailable(url, error) from None
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def session_connection(
    url: str, *, application_name: str
) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, for work that holds session state (the migrations' advisory
    lock): give it a URL that reaches the server itself (`DatabaseUrls.for_sessions`)."""
    try:
        conn = await asyncpg.connect(
            url,
            timeout=CONNECT_TIMEOUT,
            server_settings={"application_name": application_name[:63]},
        )
    except CONNECT_ERRORS as error:
        raise _unavailable(url, error) from None
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def open_pools(settings: Settings, *, application_name: str) -> AsyncIterator[Pools]:
    """One pool per distinct database (roles that share a URL share the pool), and one per
    replica. The replicas' monitor is started by the run modes."""
    urls, embedded = await resolve_database_urls(settings)
    async with AsyncExitStack() as stack:

        async def pool(url: str, *, lazy: bool = False) -> asyncpg.Pool:
            return await stack.enter_async_context(
                open_pool(
                    url,
                    size=settings.db_pool_size,
                    application_name=application_name,
                    through_pooler=urls.through_pooler,
                    pooler_prepares=urls.pooler_prepares,
                    lazy=lazy,
                )
            )

        by_url: dict[str, asyncpg.Pool] = {}
        for role_url in (urls.primary, urls.queue, urls.cache):
            if role_url not in by_url:
                by_url[role_url] = await pool(role_url)
        replicas = Replicas(
            [(describe_url(url), url, await pool(url, lazy=True)) for url in urls.replicas],
            primary_url=urls.primary,
            max_lag=settings.replica_max_lag,
            through_pooler=urls.through_pooler,
            application_name=f"{application_name} replica monitor",
        )
        stack.push_async_callback(replicas.close)
        yield Pools(
            primary=by_url[urls.primary],
            queue=by_url[urls.queue],
            cache=by_url[urls.cache],
            replicas=replicas,
            urls=urls,
            embedded=embedded,
        )


def waiting(pool: asyncpg.Pool) -> int:
    """Acquisitions waiting for one of `pool`'s connections, for the metrics.

    asyncpg counts them nowhere public: a pool's free connections sit in an asyncio.Queue
    (`_queue`), and what waits for one is that queue's getters. tests/test_metrics.py holds
    this against the asyncpg installed.
    """
    queue = getattr(pool, "_queue", None)
    return len(getattr(queue, "_getters", ()))
