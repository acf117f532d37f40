"""The job queue in numbers: what this process's worker ran, and what waits in the queue.

The worker's counts are kept as jobs end (microblog/jobs/worker.py). The queue's depth is read
from the database, by whichever process is scraped, at most once every SNAPSHOT_MAX_AGE: the
scrapes in between, and scrapes arriving together, get the same snapshot and share one query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire
from microblog.jobs import admin
from microblog.metrics.histogram import Histogram

log = logging.getLogger(__name__)

SNAPSHOT_MAX_AGE = 5.0
STATES = ("pending", "scheduled", "running", "failed")
# A scrape waits no longer than this for the queue's numbers; without them it goes on.
SNAPSHOT_TIMEOUT = 2.0
JOB_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


class JobMetrics(Collector):
    """Jobs this process ran, by kind and by how each attempt ended."""

    def __init__(self) -> None:
        self.duration = Histogram(
            "microblog_job_duration_seconds",
            "How long each attempt of a job ran, by kind.",
            ("kind",),
            JOB_DURATION_BUCKETS,
        )
        self.processed: Counter[str] = Counter()  # attempts that succeeded
        self.retried: Counter[str] = Counter()  # attempts that failed and will be tried again
        self.failed: Counter[str] = Counter()  # attempts that failed for the last time

    def ran(self, kind: str, seconds: float, *, error: bool = False, final: bool = False) -> None:
        self.duration.labels(kind).observe(seconds)
        outcome = self.processed if not error else self.failed if final else self.retried
        outcome[kind] += 1

    def collect(self) -> Iterator[Metric]:
        for name, counts, documentation in (
            ("microblog_jobs_processed", self.processed, "Job attempts that succeeded."),
            ("microblog_jobs_retried", self.retried, "Job attempts that failed; retried later."),
            ("microblog_jobs_failed", self.failed, "Job attempts that failed for the last time."),
        ):
            family = CounterMetricFamily(name, documentation + " By kind.", labels=["kind"])
            for kind, count in sorted(counts.items()):
                family.add_metric([kind], count)
            yield family


class QueueSnapshot(Collector):
    """The queue's depth by queue and state, and its oldest due job's age, as last read."""

    def __init__(
        self, pool: asyncpg.Pool, queues: Iterable[str], max_age: float = SNAPSHOT_MAX_AGE
    ) -> None:
        self.pool = pool
        self.queues = tuple(sorted(set(queues)))  # shown with zeros when they have no jobs
        self.max_age = max_age
        self.reads = 0  # queries made: at most one per max_age, however often scraped
        self._rows: list[admin.QueueDepth] | None = None
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._read_at is not None and time.monotonic() - self._read_at < self.max_age

    async def refresh(self) -> None:
        """Read the queue again if the snapshot is older than max_age."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():  # read by the scrape this one waited for
                return
            self.reads += 1
            try:
                async with (
                    asyncio.timeout(SNAPSHOT_TIMEOUT),
                    acquire(self.pool, SNAPSHOT_TIMEOUT) as conn,
                ):
                    self._rows = await admin.depth(conn)
            except DATABASE_OUTAGE as error:
                # Old numbers would look current: none is better. Tried again after max_age.
                self._rows = None
                log.warning("queue depth unavailable", extra={"error": type(error).__name__})
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        if self._rows is None:
            return
        depth = GaugeMetricFamily(
            "microblog_jobs_queued",
            "Jobs in the queue by queue and state: pending (due), scheduled (due later), "
            "running, failed. The same for every process of a cluster: aggregate with max.",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "microblog_jobs_oldest_due_age_seconds",
            "How long the oldest due job of each queue has waited; 0 when none is due.",
            labels=["queue"],
        )
        counts = {(queue, state): 0 for queue in self.queues for state in STATES}
        ages = dict.fromkeys(self.queues, 0.0)
        for row in self._rows:
            counts[row.queue, row.state] = row.count
            ages[row.queue] = max(ages.get(row.queue, 0.0), row.oldest_due_seconds or 0.0)
        for (queue, state), count in sorted(counts.items()):
            depth.add_metric([queue, state], count)
        for queue, age in sorted(ages.items()):
            oldest.add_metric([queue], age)
        yield depth
        yield oldest
