"""microblog through a real PgBouncer 1.18 in transaction mode.

In transaction mode a client's next transaction may run on another server connection, and
PgBouncer 1.18 does not carry prepared statements across: the pools must keep no session
state (no statement cache, no session settings), while LISTEN and the migrations' advisory
lock take the direct URL. Freezing PgBouncer (SIGSTOP) proves which way a connection goes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from microblog.app import create_app
from microblog.config import Settings
from microblog.db.listen import Channel, listen
from microblog.db.migrate import ALL, ensure_schema, migrate_databases
from microblog.db.pools import DatabaseUnavailable, Pools, open_pool, open_pools
from microblog.jobs import processes
from microblog.runtime import warn_about_connection_budget
from tests.conftest import Browser
from tests.servers import PgBouncer, database_of, server_connections

FROZEN_TIMEOUT = 10.0


def through(settings: Settings, pgbouncer: PgBouncer, database_url: str) -> Settings:
    return dataclasses.replace(
        settings,
        database_url=pgbouncer.url(database_url),
        database_direct_url=database_url,
        db_pool_size=8,
    )


@pytest.fixture
def pooled_settings(settings, pgbouncer, database_url) -> Settings:
    return through(settings, pgbouncer, database_url)


@pytest.fixture
async def pooled(pooled_settings) -> AsyncIterator[Pools]:
    async with open_pools(pooled_settings, application_name="microblog pgbouncer tests") as pools:
        yield pools


async def test_the_pools_open_through_pgbouncer_without_session_settings(pooled, pgbouncer):
    assert pooled.urls.through_pooler
    assert await pooled.primary.fetchval("SELECT current_setting('application_name')") == (
        "microblog pgbouncer tests"
    )
    # What the pools send to a server of their own, PgBouncer refuses at log-in.
    with pytest.raises(DatabaseUnavailable, match="unsupported startup parameter: plan_cache_mode"):
        async with open_pool(pooled.urls.primary, size=1, application_name="direct settings"):
            pass


async def workload(pools: Pools, worker: int) -> None:
    """Transactions of several statements with parameters, each answer checked."""
    for round_ in range(25):
        async with pools.primary.acquire() as conn, conn.transaction():
            assert await conn.fetchval("SELECT $1::int * 2", worker) == worker * 2
            await conn.execute("SELECT pg_sleep(0.002)")
            text = await conn.fetchval("SELECT $1::text || $2::text", str(worker), str(round_))
            assert text == f"{worker}{round_}"
            await conn.fetchval("SELECT pg_advisory_xact_lock($1)", worker)


async def test_many_transactions_share_a_few_server_connections(
    pooled, pgbouncer, server_url, database_url
):
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, await server_connections(server_url, database_of(database_url)))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(workload(pooled, worker) for worker in range(16)))
    finally:
        done.set()
        await watcher
    assert pooled.primary.get_size() == 8, "the pool did not open all its client connections"
    assert 0 < peak <= pgbouncer.pool_size


async def test_without_the_direct_url_pgbouncer_refuses_the_pools_and_says_what_to_set(
    pooled_settings,
):
    unpooled = dataclasses.replace(pooled_settings, database_direct_url=None)
    with pytest.raises(DatabaseUnavailable) as refused:
        async with open_pools(unpooled, application_name="unpooled"):
            pass
    assert "unsupported startup parameter: plan_cache_mode" in str(refused.value)
    assert "DATABASE_DIRECT_URL" in str(refused.value)


async def test_the_statement_cache_would_break_under_pgbouncer(pooled_settings):
    """The workload above can fail: with asyncpg's cache on, prepared statements go missing."""
    pool = await asyncpg.create_pool(pooled_settings.database_url, min_size=8, max_size=8)
    try:
        # Every workload runs to its end: none is left running, and cancelled, when the pool
        # closes. PgBouncer 1.18 can crash when a cancel request's client goes away before the
        # request is done (pgbouncer/pgbouncer#801), and the remaining tests share it.
        outcomes = await asyncio.gather(
            *(_cached_workload(pool, worker) for worker in range(16)), return_exceptions=True
        )
    finally:
        await pool.close()
    failures = [outcome for outcome in outcomes if outcome is not None]
    assert failures, "every workload ran with the statement cache on"
    assert all(isinstance(f, asyncpg.InvalidSQLStatementNameError) for f in failures), failures


async def _cached_workload(pool: asyncpg.Pool, worker: int) -> None:
    for _ in range(25):
        assert await pool.fetchval("SELECT $1::int * 2", worker) == worker * 2


async def test_migrations_take_the_direct_url(settings, pgbouncer, fresh_database):
    async with open_pools(
        through(settings, pgbouncer, fresh_database), application_name="migrations test"
    ) as pools:
        with pgbouncer.frozen():
            applied = await asyncio.wait_for(migrate_databases(pools), FROZEN_TIMEOUT)
            assert await asyncio.wait_for(ensure_schema(pools, migrate=False), FROZEN_TIMEOUT) == []
    assert applied == [m.version for s in ALL for m in s.migrations()]
    conn = await asyncpg.connect(fresh_database)
    try:
        held = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    finally:
        await conn.close()
    assert held == 0, "the migrations' advisory lock outlived them"


async def test_listeners_take_the_direct_url(pooled, pgbouncer):
    assert pooled.primary_url == pooled.queue_url == pooled.urls.direct
    heard: list[str] = []
    listening, notified, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()

    def hear(payload: str) -> None:
        heard.append(payload)
        notified.set()

    with pgbouncer.frozen():
        listener = asyncio.create_task(
            listen(pooled.primary_url, [Channel("pgbouncer_test", hear, listening.set)], stop,
                   name="test listener")
        )  # fmt: skip
        await asyncio.wait_for(listening.wait(), FROZEN_TIMEOUT)
    await pooled.primary.execute("SELECT pg_notify('pgbouncer_test', 'through the pooler')")
    try:
        await asyncio.wait_for(notified.wait(), FROZEN_TIMEOUT)
    finally:
        stop.set()
        await listener
    assert heard == ["through the pooler"]


async def test_the_app_works_through_pgbouncer(pooled_settings, pooled):
    app = create_app(pooled_settings, pooled, instance_name="pooled")
    async with app.test_app():
        browser = Browser(app.test_client())
        response = await browser.post("/signup", {"username": "pooled", "password": "x" * 12})
        assert response.status_code == 303
        await browser.post("/posts", {"body": "hello through pgbouncer #pooled"})
        for page in ("/", "/public", "/@pooled", "/tags/pooled"):
            assert "hello through pgbouncer" in await browser.text(page)


async def test_the_connection_budget_leaves_pooled_connections_to_pgbouncer(
    pooled_settings, pooled, caplog
):
    greedy = dataclasses.replace(pooled_settings, db_pool_size=1_000)
    async with processes.registered(pooled.queue, role="web", name="pooled", interval=60):
        with caplog.at_level(logging.WARNING, logger="microblog.runtime"):
            await warn_about_connection_budget(greedy, pooled)
    assert "connection budget exceeded" not in caplog.text


def _spelled_otherwise(url: str) -> str:
    """The same server under another URL: the pools take DATABASE_URL for a pooler."""
    return url + ("&" if "?" in url else "?") + "target_session_attrs=any"


@pytest.mark.parametrize("prepares", [False, True], ids=["off", "on"])
async def test_pooler_prepared_statements_keep_the_statement_cache(
    settings, database_url, prepares
):
    """PgBouncer 1.21 and later prepares a client's statements again on whichever server
    connection runs them; with POOLER_PREPARED_STATEMENTS on the pools then keep asyncpg's
    cache, and what they prepare is named in the server's session."""
    pooled = dataclasses.replace(
        settings,
        database_url=_spelled_otherwise(database_url),
        database_direct_url=database_url,
        pooler_prepared_statements=prepares,
    )
    async with (
        open_pools(pooled, application_name="prepared statements test") as pools,
        pools.primary.acquire() as conn,
    ):
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
        named = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
    assert (named > 0) is prepares
