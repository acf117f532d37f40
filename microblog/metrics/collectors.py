"""Numbers other parts keep anyway, read when a scraper asks: pools, replicas, caches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from microblog.cache.store import CacheStats
from microblog.db.pools import Pools, waiting
from microblog.db.replicas import Replicas


class InstanceInfo(Collector):
    def __init__(self, *, name: str, role: str, version: str) -> None:
        self.labels = {"name": name, "role": role, "version": version}

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(
            "microblog_instance", "This process: INSTANCE_NAME, run mode, version.", self.labels
        )


_POOL_GAUGES = (
    ("size", "connections", "Open connections of each pool."),
    ("max", "max_connections", "The most connections each pool may open (DB_POOL_SIZE)."),
    ("in_use", "in_use", "Connections taken from each pool now."),
    ("waiting", "waiting", "Requests and jobs waiting for a connection of each pool now."),
)


class PoolCollector(Collector):
    """Each distinct pool of the process: a role that shares the primary's database shares its
    pool, and is not counted twice."""

    def __init__(self, pools: Pools) -> None:
        self.pools = pools

    def _pools(self) -> dict[str, asyncpg.Pool]:
        by_pool: dict[int, tuple[str, asyncpg.Pool]] = {}
        for role in ("primary", "queue", "cache"):
            pool = getattr(self.pools, role)
            by_pool.setdefault(id(pool), (role, pool))
        named = dict(by_pool.values())
        replicas = self.pools.replicas
        for status in replicas.statuses:
            named[f"replica {status.name}"] = replicas.pool(status.name)
        return named

    def collect(self) -> Iterator[Metric]:
        families = {
            key: GaugeMetricFamily(f"microblog_db_pool_{name}", documentation, labels=["pool"])
            for key, name, documentation in _POOL_GAUGES
        }
        for name, pool in self._pools().items():
            size = pool.get_size()
            families["size"].add_metric([name], size)
            families["max"].add_metric([name], pool.get_max_size())
            families["in_use"].add_metric([name], size - pool.get_idle_size())
            families["waiting"].add_metric([name], waiting(pool))
        yield from families.values()


class ReplicaCollector(Collector):
    """What the replica monitor last saw of each replica (microblog/db/replicas.py)."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "microblog_replica_up",
            "1 when the last probe of the replica succeeded.",
            labels=["replica"],
        )
        seconds = GaugeMetricFamily(
            "microblog_replica_lag_seconds",
            "How long the replica has been behind the primary, as last probed.",
            labels=["replica"],
        )
        bytes_ = GaugeMetricFamily(
            "microblog_replica_lag_bytes",
            "WAL the primary has written that the replica has not replayed, as last probed.",
            labels=["replica"],
        )
        for status in self.replicas.statuses:
            up.add_metric([status.name], 1 if status.up else 0)
            if status.lag_seconds is not None:
                seconds.add_metric([status.name], status.lag_seconds)
            if status.lag_bytes is not None:
                bytes_.add_metric([status.name], status.lag_bytes)
        yield up
        yield seconds
        yield bytes_
        reads = CounterMetricFamily(
            "microblog_db_reads",
            "Reads of timelines and pages that may lag, by where they went (a replica's name or "
            "primary) and why: replica, read_your_writes (no replica has replayed the reader's "
            "last write), lagging, down, none_configured.",
            labels=["target", "reason"],
        )
        for (target, reason), count in sorted(self.replicas.reads.items()):
            reads.add_metric([target, str(reason)], count)
        yield reads
        failovers = CounterMetricFamily(
            "microblog_replica_failovers",
            "Reads that failed on the replica, which the primary then served.",
            labels=["replica"],
        )
        for name, count in sorted(self.replicas.failovers.items()):
            failovers.add_metric([name], count)
        yield failovers
        yield GaugeMetricFamily(
            "microblog_replica_max_lag_seconds",
            "REPLICA_MAX_LAG: a replica further behind is not read from.",
            value=self.replicas.max_lag,
        )


class CacheCollector(Collector):
    """Hits, misses, sets and errors of the caches that count them (CacheStats), by cache:
    `shared` for the cache in PostgreSQL, `cards` for each process's memory of post cards.
    Several counters under one name (the web side's and the job side's) are summed."""

    def __init__(self) -> None:
        self._sources: list[tuple[str, CacheStats]] = []

    def watch(self, cache: str, stats: CacheStats) -> None:
        self._sources.append((cache, stats))

    def collect(self) -> Iterator[Metric]:
        for field, what in (
            ("hits", "Lookups that found a live entry"),
            ("misses", "Lookups that found none"),
            ("writes", "Entries stored"),
            ("errors", "Operations that failed because the cache's database did not answer"),
        ):
            name = "sets" if field == "writes" else field
            family = CounterMetricFamily(
                f"microblog_cache_{name}", f"{what}, by cache.", labels=["cache"]
            )
            totals: dict[str, int] = {}
            for cache, stats in self._sources:
                totals[cache] = totals.get(cache, 0) + getattr(stats, field)
            for cache, total in sorted(totals.items()):
                family.add_metric([cache], total)
            yield family


class LiveStreamsCollector(Collector):
    """Server-sent event streams open on this process (GET /events)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "microblog_live_streams",
            "Live-update streams open on this process.",
            value=self.count(),
        )
