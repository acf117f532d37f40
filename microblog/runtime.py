"""Run modes: the long-running processes, composed of the same parts.

`web` serves HTTP, `worker` runs jobs, `combined` does both in one event loop. All of them open
pools the same way, register in infra.processes and heartbeat. SIGTERM or SIGINT sets one stop
event: the web side answers /up with 503 and stops accepting connections, the job side stops
claiming, and both finish what they started within SHUTDOWN_TIMEOUT before the process exits 0.
Every long-lived listener of a process starts here, in `listening`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from microblog.app import create_app, process_metrics
from microblog.background import JOB_KINDS, recurring_jobs
from microblog.cache.store import Cache
from microblog.config import Settings
from microblog.db.listen import listen
from microblog.db.migrate import ensure_schema
from microblog.db.pools import Pools, open_pools
from microblog.duties import transactions_with_duties
from microblog.jobs import processes
from microblog.jobs.recurring import run_scheduler
from microblog.jobs.worker import Worker, WorkerOptions
from microblog.live.hub import Hub
from microblog.metrics.process import ProcessMetrics
from microblog.signals import stop_event
from microblog.users.known import KnownUsers
from microblog.web.proxies import ProxyHeadersMiddleware
from microblog.web.scrape import MetricsEndpoint, nothing_else

log = logging.getLogger(__name__)


@asynccontextmanager
async def running_process(
    settings: Settings, role: str, name: str
) -> AsyncIterator[tuple[Pools, UUID]]:
    """Pools opened, schema checked (or migrated, in development), process registered."""
    async with open_pools(settings, application_name=f"microblog {role} {name}") as pools:
        applied = await ensure_schema(pools, migrate=not settings.is_production)
        async with (
            processes.registered(
                pools.queue, role=role, name=name, interval=settings.heartbeat_interval
            ) as process_id,
            pools.replicas.monitoring(),
        ):
            await say_how_it_started(settings, pools, role, applied)
            yield pools, process_id


async def say_how_it_started(
    settings: Settings, pools: Pools, role: str, migrations_applied: list[str]
) -> None:
    """The few lines a person starting the process reads, before hypercorn says where it
    listens: the embedded database, if any (created, started or joined), the migrations as one
    line, and what would leave work undone."""
    if pools.embedded is not None:
        log.info(pools.embedded.describe())
    for version in migrations_applied:
        log.debug("migration applied", extra={"version": version})
    if migrations_applied:
        count = len(migrations_applied)
        log.info("database schema brought up to date", extra={"migrations": count})
    if role == "web":
        async with pools.queue.acquire() as conn:
            if not await processes.job_takers(conn, settings.heartbeat_timeout):
                log.warning(
                    f"{processes.NO_JOB_TAKER} (no notification is sent until then): "
                    "run `combined` instead of `web`, or start a `worker` too"
                )
    await warn_about_connection_budget(settings, pools)


async def warn_about_connection_budget(settings: Settings, pools: Pools) -> None:
    """Say so when the registered processes' pools could exhaust the server's connections.

    Every process may open DB_POOL_SIZE connections per pool, keeps one for listening
    (combined processes two: users' rows and jobs) and, with replicas, one that probes the
    primary's position; the server refuses connections past max_connections, minus those
    reserved for superusers. Through PgBouncer, PgBouncer bounds what goes through it.
    """
    async with pools.primary.acquire() as conn:
        limit = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
    async with pools.queue.acquire() as conn:
        running, combined = await conn.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE role = 'combined') FROM infra.processes"
        )
    urls = pools.urls
    direct_pools = {urls.primary, urls.queue, urls.cache} - (
        {urls.primary} if urls.through_pooler else set()
    )
    probe = 1 if len(pools.replicas) and not urls.through_pooler else 0
    per_process = len(direct_pools) * settings.db_pool_size + 1 + probe
    if running * per_process + combined > limit - reserved:
        log.warning(
            "connection budget exceeded: raise max_connections, lower DB_POOL_SIZE, "
            "or put PgBouncer in front",
            extra={"processes": running, "per_process": per_process, "max_connections": limit},
        )


@asynccontextmanager
async def listening(
    pools: Pools,
    *,
    known_users: KnownUsers | None = None,
    live: Hub | None = None,
    worker: Worker | None = None,
) -> AsyncIterator[None]:
    """Every long-lived listener of a process until the block ends: the web side's, on one
    connection, for changed users' rows and for live events (and the live hub, which reads
    those events, and polls for them while that connection is down); the job side's, on a
    connection of its own, for new jobs."""
    stop = asyncio.Event()
    listeners = []
    channels = [listener.channel() for listener in (known_users, live) if listener is not None]
    if channels:
        listeners.append(listen(pools.primary_url, channels, stop, name="web listener"))
    if live is not None:
        listeners.append(live.keep_up(stop))
    if worker is not None:
        listeners.append(worker.listen(pools.queue_url, stop))
    tasks = [asyncio.create_task(listener) for listener in listeners]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def serve_http(
    settings: Settings,
    pools: Pools,
    known_users: KnownUsers,
    live: Hub,
    metrics: ProcessMetrics,
    *,
    host: str,
    port: int,
    name: str,
    stop: asyncio.Event,
) -> None:
    draining = asyncio.Event()
    app = create_app(
        settings, pools, instance_name=name, draining=draining, known_users=known_users,
        live=live, metrics=metrics,
    )  # fmt: skip
    config = _hypercorn_config(host, port, settings.shutdown_timeout)
    # Longer than any load balancer's idle upstream timeout (nginx.conf: 30 s): the balancer,
    # not the app, closes idle connections, so it never sends a request on one the app has
    # just closed.
    config.keep_alive_timeout = 75

    async def shutdown_trigger() -> None:
        await stop.wait()
        draining.set()  # /up answers 503 from now on
        # Open streams would keep hypercorn waiting for the whole timeout: they end now, and
        # their browsers reconnect to another instance.
        live.close_streams()
        log.info("draining", extra={"timeout": settings.shutdown_timeout})

    await serve(app, config, shutdown_trigger=shutdown_trigger)


def _hypercorn_config(host: str, port: int, graceful_timeout: float) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None  # one line per request comes from the app, with its request id
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False  # names no server software to whoever asks
    return config


async def serve_metrics(
    settings: Settings, metrics: ProcessMetrics, address: tuple[str, int], stop: asyncio.Event
) -> None:
    """/metrics alone, for a process that serves nothing else (`worker --metrics-port`)."""
    endpoint = MetricsEndpoint(
        nothing_else, metrics, trusted=settings.trusted_proxies, token=settings.metrics_token
    )
    config = _hypercorn_config(*address, graceful_timeout=1.0)
    app = ProxyHeadersMiddleware(endpoint, settings.trusted_proxies)
    await serve(app, config, shutdown_trigger=stop.wait)


def job_worker(
    settings: Settings, pools: Pools, process_id: UUID, options: WorkerOptions,
    metrics: ProcessMetrics,
) -> Worker:  # fmt: skip
    cache = Cache(pools.cache)
    metrics.caches.watch("shared", cache.stats)
    transactions = transactions_with_duties(settings, pools, cache)
    return Worker(
        pools, JOB_KINDS, process_id, options, transactions=transactions, metrics=metrics.jobs
    )


async def run_jobs(settings: Settings, pools: Pools, worker: Worker, stop: asyncio.Event) -> None:
    """The job side of a process: recurring scheduler and worker, until stop."""
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(run_scheduler(pools.queue, recurring_jobs(settings), stop))
        tasks.create_task(worker.run(stop))


def worker_options(
    settings: Settings, queues: tuple[str, ...] | None, concurrency: int | None
) -> WorkerOptions:
    return WorkerOptions(
        queues=settings.worker_queues if queues is None else queues,
        concurrency=concurrency or settings.worker_concurrency,
        shutdown_timeout=settings.shutdown_timeout,
    )


async def run_web(settings: Settings, *, host: str, port: int, name: str) -> None:
    stop = stop_event()
    async with running_process(settings, "web", name) as (pools, _):
        known_users, live = KnownUsers(), Hub(pools.primary)
        metrics = process_metrics("web", name, pools)
        async with listening(pools, known_users=known_users, live=live):
            await serve_http(settings, pools, known_users, live, metrics, host=host, port=port,
                             name=name, stop=stop)  # fmt: skip
    log.info("stopped")


async def run_worker(
    settings: Settings,
    *,
    name: str,
    options: WorkerOptions,
    metrics_address: tuple[str, int] | None = None,
) -> None:
    """Jobs until stopped; with `metrics_address`, /metrics served there too."""
    stop = stop_event()
    async with running_process(settings, "worker", name) as (pools, process_id):
        log.info("worker started", extra={"queues": ",".join(options.queues) or "all",
                                           "concurrency": options.concurrency})  # fmt: skip
        metrics = process_metrics("worker", name, pools)
        worker = job_worker(settings, pools, process_id, options, metrics)
        async with listening(pools, worker=worker):
            jobs = asyncio.create_task(run_jobs(settings, pools, worker, stop))
            try:
                if metrics_address is not None:
                    await serve_metrics(settings, metrics, metrics_address, stop)
                await jobs
            finally:
                stop.set()  # if /metrics ended on its own (cannot bind), stop the jobs too
                await jobs
    log.info("stopped")


async def run_combined(
    settings: Settings, *, host: str, port: int, name: str, options: WorkerOptions
) -> None:
    """Web and worker in one process and one event loop: the seed's workers-in-each-instance."""
    stop = stop_event()
    async with running_process(settings, "combined", name) as (pools, process_id):
        known_users, live = KnownUsers(), Hub(pools.primary)
        metrics = process_metrics("combined", name, pools)
        worker = job_worker(settings, pools, process_id, options, metrics)
        async with listening(pools, known_users=known_users, live=live, worker=worker):
            jobs = asyncio.create_task(run_jobs(settings, pools, worker, stop))
            try:
                await serve_http(settings, pools, known_users, live, metrics, host=host, port=port,
                                 name=name, stop=stop)  # fmt: skip
            finally:
                stop.set()  # if the web side ended on its own (cannot bind), stop the jobs too
                await jobs
    log.info("stopped")
