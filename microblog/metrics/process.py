"""Everything one process exports at /metrics, in a registry of its own.

A registry per process object, never prometheus_client's global one: tests build several apps
in one Python process, and each must count only its own requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from microblog import __version__
from microblog.db.pools import Pools
from microblog.metrics.collectors import (
    CacheCollector,
    InstanceInfo,
    LiveStreamsCollector,
    PoolCollector,
    ReplicaCollector,
)
from microblog.metrics.http import HttpMetrics
from microblog.metrics.jobs import JobMetrics, QueueSnapshot

# The text format the exposition is written in (prometheus_client's generate_latest and
# microblog/metrics/histogram.py both write version 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ProcessMetrics:
    """The metrics of one web, worker or combined process."""

    def __init__(self, *, role: str, instance: str, pools: Pools, queues: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)  # CPU, memory, start time, open files
        self.http = HttpMetrics()
        self.jobs = JobMetrics()
        self.queue = QueueSnapshot(pools.queue, queues)
        self.caches = CacheCollector()
        for collector in (
            InstanceInfo(name=instance, role=role, version=__version__),
            self.http,
            self.jobs,
            self.queue,
            PoolCollector(pools),
            ReplicaCollector(pools.replicas),
            self.caches,
        ):
            self.registry.register(collector)

    def count_streams(self, count: Callable[[], int]) -> None:
        """Export the number of live-update streams open, as `count()` tells it: the web side's
        (a worker has none)."""
        self.registry.register(LiveStreamsCollector(count))

    async def exposition(self) -> bytes:
        """The text a scrape gets; reads the queue's depth first if its snapshot is old."""
        await self.queue.refresh()
        histograms = self.http.duration.text() + self.jobs.duration.text()
        return generate_latest(self.registry) + histograms.encode()
