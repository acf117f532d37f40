"""The replicas of a process: their pools, and a monitor that keeps their state fresh.

Every PROBE_INTERVAL the monitor asks the primary for its WAL position, then every replica for
its replay position, each on a connection of the monitor's own and within PROBE_TIMEOUT. A
replica that errors, times out or is not a standby is marked down, and probed again on the next
round like the others: it rejoins by itself. Picking a replica for a read (`choose`) only reads
this state, so routing adds no query to a request.

What the metrics read, per process: `statuses` (each replica's lag and state), `reads` (how
many reads were sent where, and why) and `failovers` (reads a replica failed, which the primary
then served).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from microblog.db.lsn import Lsn
from microblog.db.outage import CONNECT_ERRORS, REPLICA_FAULTS
from microblog.db.replica_status import (
    Choice,
    PrimaryPositions,
    Reason,
    ReplicaStatus,
    choose_replica,
    summary,
)

log = logging.getLogger(__name__)

PROBE_INTERVAL = 0.2
PROBE_TIMEOUT = 1.0
# What a probe may run into that says the server cannot be used now, never a bug of ours.
PROBE_FAULTS = (*CONNECT_ERRORS, *REPLICA_FAULTS)
# How far back the primary's positions are kept to time a replica's lag (at least this long).
POSITION_HISTORY = 60.0

PRIMARY_PROBE = "SELECT pg_current_wal_lsn()"
REPLICA_PROBE = """
    SELECT pg_is_in_recovery() AS standby,
           pg_last_wal_replay_lsn() AS replayed,
           extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8
               AS since_last_commit
"""


class NotAStandby(RuntimeError):
    """The server answers but replays nothing: a primary, or a promoted replica."""


class _Probe:
    """The monitor's own connection to one server, opened again after any failure."""

    def __init__(self, url: str, *, application_name: str, through_pooler: bool) -> None:
        self._url = url
        self._application_name = application_name[:63]
        self._through_pooler = through_pooler
        self._conn: asyncpg.Connection | None = None

    async def fetchrow(self, sql: str) -> asyncpg.Record:
        try:
            if self._conn is None or self._conn.is_closed():  # a server restarted since
                self._conn = await asyncpg.connect(
                    self._url,
                    timeout=PROBE_TIMEOUT,
                    statement_cache_size=0 if self._through_pooler else 100,
                    server_settings={"application_name": self._application_name},
                )
            return await self._conn.fetchrow(sql, timeout=PROBE_TIMEOUT)
        except BaseException:
            self.close()  # whatever state it is in, the next probe starts afresh
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


class _Replica:
    def __init__(self, name: str, pool: asyncpg.Pool, probe: _Probe) -> None:
        self.name, self.pool, self.probe = name, pool, probe
        self.status = ReplicaStatus(name=name, up=False, error="not probed yet")


class Replicas:
    """The replicas one process may read from, in the order REPLICA_DATABASE_URL names them."""

    def __init__(
        self,
        replicas: Sequence[tuple[str, str, asyncpg.Pool]],  # (name, url, pool)
        *,
        primary_url: str,
        max_lag: float,
        through_pooler: bool,
        application_name: str,
    ) -> None:
        def probe(url: str) -> _Probe:
            return _Probe(url, application_name=application_name, through_pooler=through_pooler)

        self.max_lag = max_lag
        self._replicas: dict[str, _Replica] = {}
        for name, url, pool in replicas:
            unique = name if name not in self._replicas else f"{name}#{len(self._replicas) + 1}"
            self._replicas[unique] = _Replica(unique, pool, probe(url))
        self._primary = probe(primary_url)
        self._positions = PrimaryPositions(keep=max(POSITION_HISTORY, 2 * max_lag))
        self._turns = itertools.count()
        # Since the process started: reads by (target, reason), and by replica the reads it
        # failed that the primary then served.
        self.reads: Counter[tuple[str, Reason]] = Counter()
        self.failovers: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._replicas)

    @property
    def statuses(self) -> tuple[ReplicaStatus, ...]:
        """A snapshot of every replica's state, for choosing, /up, logs and metrics."""
        return tuple(replica.status for replica in self._replicas.values())

    def summaries(self) -> list[str]:
        """One line per replica, as /up shows them: in use or not, and why."""
        now = time.time()
        return [summary(status, max_lag=self.max_lag, now=now) for status in self.statuses]

    def choose(self, required: Lsn | None) -> Choice:
        """Where a read that needs position `required` (None: any) should go; counted."""
        choice = choose_replica(
            self.statuses,
            required=required,
            max_lag=self.max_lag,
            now=time.time(),
            turn=next(self._turns),
        )
        self.reads[choice.target, choice.reason] += 1
        return choice

    def pool(self, name: str) -> asyncpg.Pool:
        return self._replicas[name].pool

    def mark_down(self, name: str, error: BaseException) -> None:
        """A read on this replica failed (the primary serves it instead): skip the replica
        until the next good probe."""
        self.failovers[name] += 1
        self._set(self._replicas[name], up=False, error=_describe(error))

    async def probe(self) -> None:
        """One round: the primary's position first, so no replica looks ahead of it."""
        try:
            position = Lsn((await self._primary.fetchrow(PRIMARY_PROBE))[0])
        except PROBE_FAULTS as error:
            log.debug("primary position unknown", extra={"error": _describe(error)})
        else:
            self._positions.record(position, time.monotonic())
        await asyncio.gather(*(self._probe_replica(r) for r in self._replicas.values()))

    async def _probe_replica(self, replica: _Replica) -> None:
        try:
            row = await replica.probe.fetchrow(REPLICA_PROBE)
            if not row["standby"] or row["replayed"] is None:
                raise NotAStandby("is not a standby (pg_is_in_recovery() is false)")
        except (*PROBE_FAULTS, NotAStandby) as error:
            replica.probe.close()
            self._set(replica, up=False, error=_describe(error))
            return
        replayed = Lsn(row["replayed"])
        latest = self._positions.latest
        self._set(
            replica,
            up=True,
            replay_lsn=replayed,
            lag_seconds=self._positions.lag(
                replayed, time.monotonic(), since_last_replayed_commit=row["since_last_commit"]
            ),
            lag_bytes=None if latest is None else max(0, latest - replayed),
        )

    def _set(self, replica: _Replica, *, up: bool, error: str | None = None, **known) -> None:
        was = replica.status
        if up:
            replica.status = ReplicaStatus(
                name=replica.name, up=True, probed_at=time.time(), **known
            )
        else:  # the last known position stays visible, for the admin page and the metrics
            replica.status = ReplicaStatus(
                name=replica.name, up=False, replay_lsn=was.replay_lsn,
                probed_at=time.time(), error=error,
            )  # fmt: skip
        if was.up != up or was.probed_at is None:
            if up:
                log.info("replica up", extra={"replica": replica.name})
            else:
                log.warning("replica down", extra={"replica": replica.name, "error": error})
        if up and self._lagging(replica.status) != (was.up and self._lagging(was)):
            if self._lagging(replica.status):
                log.warning("replica lagging; reads go elsewhere", extra=self._lag_of(replica))
            else:
                log.info("replica caught up", extra=self._lag_of(replica))

    def _lagging(self, status: ReplicaStatus) -> bool:
        return status.lag_seconds is not None and status.lag_seconds > self.max_lag

    def _lag_of(self, replica: _Replica) -> dict[str, object]:
        status = replica.status
        return {"replica": replica.name, "lag_seconds": round(status.lag_seconds or 0.0, 3),
                "lag_bytes": status.lag_bytes, "max_lag": self.max_lag}  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every PROBE_INTERVAL until stop is set."""
        while not stop.is_set():
            started = time.monotonic()
            await self.probe()
            wait = max(0.0, PROBE_INTERVAL - (time.monotonic() - started))
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
            except TimeoutError:
                pass

    @asynccontextmanager
    async def monitoring(self) -> AsyncIterator[None]:
        """Keep the state fresh in the background for as long as the block runs."""
        if not self._replicas:
            yield
            return
        log.info("replica monitor started", extra={"replicas": ",".join(self._replicas)})
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        task.add_done_callback(_report_crash)
        try:
            yield
        finally:
            stop.set()
            await task

    async def close(self) -> None:
        for probe in (self._primary, *(replica.probe for replica in self._replicas.values())):
            probe.close()


def _report_crash(task: asyncio.Task) -> None:
    """Said at once: the statuses then age until every replica counts as down."""
    if not task.cancelled() and task.exception() is not None:
        log.error("replica monitor stopped", exc_info=task.exception())


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__
