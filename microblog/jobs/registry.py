"""Job kinds: plain async functions, declared with @job and registered explicitly.

    @job("notifications.post_created", max_attempts=8)
    async def post_created(ctx: JobContext, *, post_id: int) -> None: ...

A job receives its arguments as keywords, decoded from JSON. It must be safe to run twice:
delivery is at least once (a worker killed mid-job means the job runs again elsewhere).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from microblog.db.pools import Pools
from microblog.db.transactions import Transactions

DEFAULT_QUEUE = "default"


class JobArgumentsError(TypeError):
    """Arguments that the job's function would not accept, or that are not JSON."""


@dataclass(frozen=True)
class JobContext:
    """What a running job gets besides its arguments."""

    pools: Pools
    job_id: int
    attempt: int
    # The job's writes, with the same work after their commit as a request's (enqueue among it).
    transaction: Transactions


JobFunction = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    name: str
    function: JobFunction
    queue: str = DEFAULT_QUEUE
    max_attempts: int = 5
    timeout: float = 300.0
    # At most this many jobs of this kind run at once across every worker (None: no limit).
    concurrency: int | None = None
    # Retry n waits about retry_base * 2**(n-1) seconds, with jitter, capped at an hour.
    retry_base: float = 5.0

    def encode(self, args: dict[str, Any]) -> str:
        """The arguments as JSON, checked against the function's signature first."""
        try:
            inspect.signature(self.function).bind(None, **args)
        except TypeError as error:
            raise JobArgumentsError(f"{self.name}: {error}") from None
        try:
            return json.dumps(args, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise JobArgumentsError(f"{self.name}: arguments are not JSON ({error})") from None

    async def __call__(self, ctx: JobContext, args: dict[str, Any]) -> None:
        await self.function(ctx, **args)


def job(name: str, **options: Any) -> Callable[[JobFunction], JobKind]:
    """Declare an async function as a job kind (see JobKind for the options)."""

    def declare(function: JobFunction) -> JobKind:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"job {name} must be an async function")
        return JobKind(name=name, function=function, **options)

    return declare


class JobRegistry:
    """The job kinds a worker can run, by name."""

    def __init__(self, kinds: Iterable[JobKind]) -> None:
        self.kinds: dict[str, JobKind] = {}
        for kind in kinds:
            if kind.name in self.kinds:
                raise ValueError(f"job kind {kind.name} registered twice")
            self.kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        return self.kinds.get(name)

    @property
    def limited(self) -> dict[str, int]:
        """Kinds with a concurrency limit, and the limit."""
        return {k.name: k.concurrency for k in self.kinds.values() if k.concurrency is not None}
