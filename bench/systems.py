"""The three job queues under test, behind one small interface, and the worker processes.

A System knows how to install its schema, enqueue through its own API, and tell from its
tables whether jobs remain. A WorkerSetup is one way to run a worker process for a system.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import asyncpg
import competitors

from microblog.config import documented_variables
from microblog.db.migrate import ALL, apply_migrations
from microblog.jobs.builtin import ping
from microblog.jobs.queue import enqueue, enqueue_many

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


class Client(Protocol):
    """An enqueuing client on one connection (procrastinate: its own pool, as usual)."""

    async def enqueue_one(self) -> int: ...

    async def enqueue_batch(self, count: int) -> None: ...

    async def begin(self) -> None:
        """Start the transaction that enqueue_in_transaction adds to (for the backlog)."""

    async def enqueue_in_transaction(self, count: int) -> None: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True)
class System:
    name: str
    install: Callable[[str], Awaitable[None]]
    client: Callable[[str], AbstractAsyncContextManager[Client]]
    remaining_sql: str  # true while jobs of the benchmark are waiting or running
    finished_sql: str  # how many finished successfully
    table: str  # the jobs table, for the latency triggers
    claimed_when: str  # a trigger WHEN condition: this UPDATE claims a job


# microblog --------------------------------------------------------------------------------


class _AsyncpgClient:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def begin(self) -> None:
        await self.conn.execute("BEGIN")

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def enqueue_in_transaction(self, count: int) -> None:
        await self.enqueue_batch(count)


class MicroblogClient(_AsyncpgClient):
    async def enqueue_one(self) -> int:
        job_id = await enqueue(self.conn, ping, {})
        assert job_id is not None
        return job_id

    async def enqueue_batch(self, count: int) -> None:
        await enqueue_many(self.conn, ping, [{}] * count)


@asynccontextmanager
async def _asyncpg_client(url: str, client: type[_AsyncpgClient]) -> AsyncIterator[Client]:
    conn = await asyncpg.connect(url)
    try:
        yield client(conn)
    finally:
        await conn.close()


async def _install_microblog(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn, ALL)
    finally:
        await conn.close()


MICROBLOG = System(
    name="microblog",
    install=_install_microblog,
    client=lambda url: _asyncpg_client(url, MicroblogClient),
    remaining_sql="""
        SELECT EXISTS (
            SELECT 1 FROM infra.jobs WHERE state IN ('pending', 'running') AND kind = 'jobs.ping'
        )
    """,
    finished_sql="SELECT count(*) FROM infra.jobs WHERE state = 'finished' AND kind = 'jobs.ping'",
    table="infra.jobs",
    claimed_when="OLD.state = 'pending' AND NEW.state = 'running'",
)

# pgqueuer ---------------------------------------------------------------------------------


class PgqueuerClient(_AsyncpgClient):
    def __init__(self, conn: asyncpg.Connection) -> None:
        from pgqueuer import Queries

        super().__init__(conn)
        self.queries = Queries.from_asyncpg_connection(conn)

    async def enqueue_one(self) -> int:
        (job_id,) = await self.queries.enqueue(competitors.PGQUEUER_ENTRYPOINT, None)
        return job_id

    async def enqueue_batch(self, count: int) -> None:
        await self.queries.enqueue(
            [competitors.PGQUEUER_ENTRYPOINT] * count, [None] * count, [0] * count
        )


async def _install_pgqueuer(url: str) -> None:
    from pgqueuer import Queries

    conn = await asyncpg.connect(url)
    try:
        await Queries.from_asyncpg_connection(conn).install()
    finally:
        await conn.close()


PGQUEUER = System(
    name="pgqueuer",
    install=_install_pgqueuer,
    client=lambda url: _asyncpg_client(url, PgqueuerClient),
    remaining_sql="SELECT EXISTS (SELECT 1 FROM pgqueuer WHERE entrypoint = 'noop')",
    finished_sql="""
        SELECT count(*) FROM pgqueuer_log WHERE status = 'successful' AND entrypoint = 'noop'
    """,
    table="pgqueuer",
    claimed_when="OLD.status = 'queued' AND NEW.status = 'picked'",
)

# procrastinate ----------------------------------------------------------------------------


class ProcrastinateClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.app, self.task = competitors.procrastinate_app(url)
        self.conn = None  # a connection of our own, only for the backlog's one transaction

    async def enqueue_one(self) -> int:
        return await self.task.defer_async()

    async def enqueue_batch(self, count: int) -> None:
        await self.task.batch_defer_async(*([{}] * count))

    async def begin(self) -> None:
        import psycopg

        self.conn = await psycopg.AsyncConnection.connect(self.url)  # not autocommit

    async def enqueue_in_transaction(self, count: int) -> None:
        await self.task.configure(connection=self.conn).batch_defer_async(*([{}] * count))

    async def commit(self) -> None:
        await self.conn.commit()
        await self.conn.close()


@asynccontextmanager
async def _procrastinate_client(url: str) -> AsyncIterator[Client]:
    client = ProcrastinateClient(url)
    async with client.app.open_async():
        yield client


async def _install_procrastinate(url: str) -> None:
    app, _ = competitors.procrastinate_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


PROCRASTINATE = System(
    name="procrastinate",
    install=_install_procrastinate,
    client=_procrastinate_client,
    remaining_sql="""
        SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))
    """,
    finished_sql="SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'",
    table="procrastinate_jobs",
    claimed_when="OLD.status = 'todo' AND NEW.status = 'doing'",
)

SYSTEMS = (MICROBLOG, PGQUEUER, PROCRASTINATE)

# Worker processes -------------------------------------------------------------------------


def _listening(channel: str) -> str:
    return f"""
        EXISTS (
            SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND query ILIKE 'LISTEN %{channel}%'
        )
    """


@dataclass(frozen=True)
class WorkerSetup:
    label: str
    system: System
    argv: tuple[str, ...]
    url_variable: str  # the environment variable that gets the database URL
    ready_sql: str | None  # None: the process prints "ready" on stdout
    latency: bool = True  # also measure enqueue-to-start latency with this setup
    # Seconds the ready worker idles before the jobs arrive; None: the run's (Sizes.idle).
    idle: float | None = None

    def environment(self, url: str, data_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        if self.url_variable == "DATABASE_URL":
            # Every microblog setting at its default, whatever the caller's shell has set.
            for variable, _ in documented_variables():
                env.pop(variable, None)
            env["MICROBLOG_DATA_DIR"] = str(data_dir)
        env[self.url_variable] = url
        return env


def _competitor(*args: str) -> tuple[str, ...]:
    return (sys.executable, str(BENCH / "competitors.py"), *args)


OURS = WorkerSetup(
    label="microblog (defaults)",
    system=MICROBLOG,
    argv=(sys.executable, "-m", "microblog", "worker"),
    url_variable="DATABASE_URL",
    ready_sql=f"""
        SELECT EXISTS (SELECT 1 FROM infra.processes WHERE role = 'worker')
           AND {_listening("microblog_jobs")}
    """,
)
# The same worker hit by the jobs 1 s after it is ready, its claim statement run only a few
# times: shows whether the drain depends on how PostgreSQL planned it (PLAN_NOTE in report.py).
OURS_JUST_STARTED = replace(
    OURS, label="microblog (defaults), jobs 1 s after start", latency=False, idle=1.0
)
PGQUEUER_DEFAULT = WorkerSetup(
    label="pgqueuer (defaults: batch_size=10)",
    system=PGQUEUER,
    argv=_competitor("pgqueuer"),
    url_variable=competitors.URL_VARIABLE,
    ready_sql=None,
)
PGQUEUER_FAST = WorkerSetup(
    label="pgqueuer batch_size=100",
    system=PGQUEUER,
    argv=_competitor("pgqueuer", "--batch-size", "100"),
    url_variable=competitors.URL_VARIABLE,
    ready_sql=None,
)
PGQUEUER_UVLOOP = WorkerSetup(
    label="pgqueuer batch_size=100 on uvloop",
    system=PGQUEUER,
    argv=_competitor("pgqueuer", "--batch-size", "100", "--uvloop"),
    url_variable=competitors.URL_VARIABLE,
    ready_sql=None,
    latency=False,
)
PROCRASTINATE_DEFAULT = WorkerSetup(
    label="procrastinate (defaults: concurrency=1)",
    system=PROCRASTINATE,
    argv=_competitor("procrastinate"),
    url_variable=competitors.URL_VARIABLE,
    ready_sql=f"""
        SELECT EXISTS (SELECT 1 FROM procrastinate_workers)
           AND {_listening("procrastinate")}
    """,
)
FLOOR = WorkerSetup(
    label="floor: bare asyncpg loop, 100/batch",
    system=MICROBLOG,
    argv=_competitor("floor"),
    url_variable=competitors.URL_VARIABLE,
    ready_sql=None,
    latency=False,
)

WORKERS = (
    OURS,
    OURS_JUST_STARTED,
    PGQUEUER_DEFAULT,
    PGQUEUER_FAST,
    # `pgq run` runs on uvloop when it is installed (it is not a dependency of pgqueuer).
    *((PGQUEUER_UVLOOP,) if importlib.util.find_spec("uvloop") else ()),
    PROCRASTINATE_DEFAULT,
    FLOOR,
)
