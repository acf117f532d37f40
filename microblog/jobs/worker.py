"""The worker: claims jobs in batches, runs them concurrently, records what happened.

One loop talks to the database: each round trip marks the jobs finished since the last one as
done and claims replacements (one statement). `concurrency` runner tasks execute the claimed
jobs. While jobs are short (a few milliseconds), the worker keeps up to PREFETCH x concurrency
claimed ahead, so round trips, not jobs, bound the throughput; for longer jobs it claims only
what it can start, leaving the rest to other workers.

On stop: no more claims, jobs not yet started go back to the queue at once, running jobs get
`shutdown_timeout` to finish, and whatever is still running then is interrupted and handed back.
Handing back never counts as an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from microblog.db.listen import Channel, listen
from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import Pools
from microblog.db.transactions import Transactions
from microblog.jobs import queue
from microblog.jobs.queue import ClaimedJob
from microblog.jobs.registry import JobContext, JobRegistry
from microblog.metrics.jobs import JobMetrics

log = logging.getLogger(__name__)

PREFETCH = 10
FAST_JOB_SECONDS = 0.01
MAX_RETRY_DELAY = 3600.0


@dataclass
class _Outcome:
    job: ClaimedJob
    error: str
    retry_at: datetime | None


@dataclass
class WorkerOptions:
    queues: tuple[str, ...] = ()  # empty: every queue
    concurrency: int = 10
    poll_interval: float = 1.0
    shutdown_timeout: float = 20.0


@dataclass
class _State:
    finished: list[int] = field(default_factory=list)
    failures: list[_Outcome] = field(default_factory=list)
    busy: int = 0
    interrupted: list[int] = field(default_factory=list)
    average_seconds: float = 1.0  # pessimistic until jobs have been timed


def retry_delay(kind_base: float, attempt: int) -> float:
    """Exponential backoff with jitter: about base * 2**(attempt-1), at most an hour."""
    delay = min(kind_base * 2 ** (attempt - 1), MAX_RETRY_DELAY)
    return delay * random.uniform(0.5, 1.5)


class Worker:
    def __init__(
        self,
        pools: Pools,
        registry: JobRegistry,
        process_id: UUID,
        options: WorkerOptions,
        *,
        transactions: Transactions,
        metrics: JobMetrics | None = None,
    ) -> None:
        self.pools = pools
        self.metrics = metrics or JobMetrics()  # the process's, when it exports them
        self.transactions = transactions
        self.registry = registry
        self.process_id = process_id
        self.options = options
        self._ready: asyncio.Queue[ClaimedJob] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._state = _State()
        # Every limited kind, whatever queue this worker serves: a job of a limited kind may
        # have been enqueued on another queue than its kind's, and must be limited there too.
        self._limited = registry.limited

    def wake(self, queue_name: str = "") -> None:
        """Called for job notifications: look for work now rather than at the next poll."""
        if not queue_name or not self.options.queues or queue_name in self.options.queues:
            self._wake.set()

    async def listen(self, url: str, stop: asyncio.Event) -> None:
        """Wake on job notifications until stop; look for work whenever listening (re)starts,
        since jobs enqueued while no one listened announced themselves to no one."""
        channel = Channel(queue.CHANNEL, self.wake, on_listening=self.wake)
        await listen(url, [channel], stop, name="job listener")

    async def run(self, stop: asyncio.Event) -> None:
        stop_watch = asyncio.create_task(self._wake_on(stop))
        runners = [asyncio.create_task(self._runner()) for _ in range(self.options.concurrency)]
        try:
            await self._claim_loop(stop)
        finally:
            stop_watch.cancel()
            await self._drain(runners)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    # The claiming side -----------------------------------------------------------------

    def _capacity(self) -> int:
        state = self._state
        ahead = PREFETCH if state.average_seconds < FAST_JOB_SECONDS else 1
        return max(self.options.concurrency * ahead - self._ready.qsize() - state.busy, 0)

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            finished, self._state.finished = self._state.finished, []
            wanted = self._capacity()
            if wanted == 0 and not finished and not self._state.failures:
                await self._wake.wait()  # a job finishing, or stop, sets it
                continue
            try:
                claimed = await self._round_trip(finished, wanted)
            except DATABASE_OUTAGE as error:
                self._state.finished[:0] = finished  # acknowledge them next time
                log.warning("worker: database error", extra={"error": f"{type(error).__name__}"})
                await self._sleep(self.options.poll_interval)
                continue
            for job in claimed:
                self._ready.put_nowait(job)
            if len(claimed) < wanted and not self._state.finished:
                await self._sleep(self.options.poll_interval)  # until notified or the next poll

    async def _sleep(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _round_trip(self, finished: list[int], wanted: int) -> list[ClaimedJob]:
        async with self.pools.queue.acquire() as conn:
            await self._record_failures(conn)
            claimed = await queue.finish_and_claim(
                conn, self.process_id, finished, wanted, self.options.queues, list(self._limited)
            )
            for kind, limit in self._limited.items():
                if len(claimed) >= wanted:
                    break
                claimed += await queue.claim_limited(
                    conn, self.process_id, kind, limit, wanted - len(claimed), self.options.queues
                )
        return claimed

    async def _record_failures(self, conn: asyncpg.Connection) -> None:
        while self._state.failures:
            outcome = self._state.failures[0]
            if outcome.retry_at is None:
                await queue.mark_failed(conn, outcome.job.id, self.process_id, outcome.error)
            else:
                await queue.retry_later(
                    conn, outcome.job.id, self.process_id, outcome.error, outcome.retry_at
                )
            self._state.failures.pop(0)

    # The running side ------------------------------------------------------------------

    async def _runner(self) -> None:
        while True:
            job = await self._ready.get()
            self._state.busy += 1
            try:
                await self._execute(job)
            finally:
                self._state.busy -= 1
                self._wake.set()

    async def _execute(self, job: ClaimedJob) -> None:
        kind = self.registry.get(job.kind)
        started = time.monotonic()
        try:
            if kind is None:
                raise LookupError(f"no job kind {job.kind!r} in this worker")
            async with asyncio.timeout(kind.timeout):
                await kind(
                    JobContext(self.pools, job.id, job.attempts, self.transactions), job.args
                )
        except asyncio.CancelledError:
            self._state.interrupted.append(job.id)
            raise
        except Exception as error:
            final = self._failed(job, error, kind.retry_base if kind else 60.0)
            self.metrics.ran(job.kind, time.monotonic() - started, error=True, final=final)
        else:
            self._state.finished.append(job.id)
            self.metrics.ran(job.kind, time.monotonic() - started)
        finally:
            elapsed = time.monotonic() - started
            self._state.average_seconds = 0.9 * self._state.average_seconds + 0.1 * elapsed

    def _failed(self, job: ClaimedJob, error: BaseException, retry_base: float) -> bool:
        """Record the failure for the next round trip; True if it was the last attempt."""
        if isinstance(error, TimeoutError):
            summary = "TimeoutError: the job ran longer than its timeout"
        else:
            summary = f"{type(error).__name__}: {error}"
        final = job.attempts >= job.max_attempts
        retry_at = None
        if not final:
            delay = retry_delay(retry_base, job.attempts)
            retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        log.error(
            "job failed",
            extra={
                "job_id": job.id,
                "kind": job.kind,
                "attempt": job.attempts,
                "error": summary,
                "next": "gave up" if final else retry_at.isoformat(timespec="seconds"),
            },
        )
        details = "".join(traceback.format_exception(error))
        self._state.failures.append(_Outcome(job, f"{summary}\n\n{details}", retry_at))
        return final

    # Stopping --------------------------------------------------------------------------

    async def _drain(self, runners: list[asyncio.Task]) -> None:
        unstarted = []
        while not self._ready.empty():
            unstarted.append(self._ready.get_nowait().id)
        await self._give_back(unstarted)  # at once: other workers can run them meanwhile
        deadline = time.monotonic() + self.options.shutdown_timeout
        if self._state.busy:
            log.info("waiting for running jobs", extra={"running": self._state.busy})
        while self._state.busy and time.monotonic() < deadline:
            await self._sleep(deadline - time.monotonic())  # a finishing job wakes us
            self._wake.clear()
        for runner in runners:  # idle ones wait for work; busy ones are past the deadline
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await self._give_back(self._state.interrupted)
        if self._state.interrupted:
            log.warning(
                "interrupted jobs handed back", extra={"jobs": len(self._state.interrupted)}
            )

    async def _give_back(self, job_ids: list[int]) -> None:
        """Record what finished or failed, and return `job_ids` to the queue."""
        try:
            async with self.pools.queue.acquire() as conn:
                await self._record_failures(conn)
                finished, self._state.finished = self._state.finished, []
                await queue.finish_and_claim(conn, self.process_id, finished, 0, (), [])
                if job_ids:
                    await queue.hand_back(conn, self.process_id, job_ids)
        except DATABASE_OUTAGE as error:
            # Whatever is not recorded stays claimed by this process, and goes back to the
            # queue when the prune job finds the process gone.
            log.warning("worker: could not record its last jobs", extra={"error": str(error)})
