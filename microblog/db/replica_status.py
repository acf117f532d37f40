"""What is known about each replica, and which one may serve a read: pure, no I/O.

The monitor (microblog/db/replicas.py) probes every replica and the primary in the
background and keeps one ReplicaStatus per replica. A read then picks a replica from those
statuses alone, with no query: one that is up, no further behind the primary than
REPLICA_MAX_LAG, and that has replayed at least the position the reader needs (the primary's
position after that user's last write; None for anyone else). Otherwise the read goes to the
primary, and the reason says why.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from microblog.db.lsn import Lsn

# A status older than this is not believed: the monitor has stalled or its probe hangs.
STALE_AFTER = 2.0


class Reason(enum.StrEnum):
    """Why a read goes where it goes (a label for logs and metrics)."""

    REPLICA = "replica"  # a replica can serve it
    NONE_CONFIGURED = "none_configured"
    READ_YOUR_WRITES = "read_your_writes"  # no replica has replayed the reader's last write
    LAGGING = "lagging"  # those that are up are too far behind the primary
    DOWN = "down"


# When no replica can serve a read, the reason reported is that of the one that came closest.
_CLOSENESS = (Reason.READ_YOUR_WRITES, Reason.LAGGING, Reason.DOWN)


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica as last probed. Lags are None until they are known."""

    name: str  # host:port/database, never a password
    up: bool
    replay_lsn: Lsn | None = None
    lag_seconds: float | None = None  # how long it has been behind a primary with newer WAL
    lag_bytes: int | None = None  # the primary's position minus the replica's
    probed_at: float | None = None  # time.time() of the last probe, good or bad
    error: str | None = None  # what the last probe ran into; None when it succeeded


@dataclass(frozen=True)
class Choice:
    reason: Reason
    replica: str | None = None  # the replica's name; None: the primary

    @property
    def target(self) -> str:
        return self.replica or "primary"


def choose_replica(
    statuses: Sequence[ReplicaStatus],
    *,
    required: Lsn | None,
    max_lag: float,
    now: float,
    turn: int,
) -> Choice:
    """The replica for a read that needs position `required`, or the primary and why.

    `turn` spreads reads over the replicas that qualify (a counter the caller advances);
    `now` is time.time().
    """
    if not statuses:
        return Choice(Reason.NONE_CONFIGURED)
    eligible: list[str] = []
    closest = Reason.DOWN
    for status in statuses:
        verdict = _verdict(status, required, max_lag, now)
        if verdict is Reason.REPLICA:
            eligible.append(status.name)
        elif _CLOSENESS.index(verdict) < _CLOSENESS.index(closest):
            closest = verdict
    if eligible:
        return Choice(Reason.REPLICA, eligible[turn % len(eligible)])
    return Choice(closest)


def _verdict(status: ReplicaStatus, required: Lsn | None, max_lag: float, now: float) -> Reason:
    if not status.up or status.probed_at is None or now - status.probed_at > STALE_AFTER:
        return Reason.DOWN
    if status.lag_seconds is None or status.lag_seconds > max_lag:
        return Reason.LAGGING
    if required is not None and (status.replay_lsn is None or status.replay_lsn < required):
        return Reason.READ_YOUR_WRITES
    return Reason.REPLICA


def summary(status: ReplicaStatus, *, max_lag: float, now: float) -> str:
    """One line on a replica for an operator: whether reads may use it, and if not, why."""
    verdict = _verdict(status, None, max_lag, now)
    behind = (
        f"{status.lag_seconds:.1f} s and {status.lag_bytes or 0} bytes behind"
        if status.lag_seconds is not None
        else "lag unknown"
    )
    if verdict is Reason.REPLICA:
        return f"replica {status.name}: in use, {behind}"
    if verdict is Reason.LAGGING:
        return f"replica {status.name}: not in use, lagging ({behind}; at most {max_lag:g} s)"
    return f"replica {status.name}: not in use, down ({status.error or 'not heard from lately'})"


class PrimaryPositions:
    """The primary's WAL position as the monitor saw it over time.

    A replica is behind only while the primary has WAL it has not replayed; how long is told by
    when the primary was first seen past the replica's position. The replica's own clock
    (now minus its last replayed commit) would count an idle primary as lag: after an hour
    without writes, the next commit would make every replica look an hour behind until it is
    replayed.
    """

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._seen: deque[tuple[float, Lsn]] = deque()  # (monotonic time, position), rising

    def record(self, position: Lsn, at: float) -> None:
        if not self._seen or position > self._seen[-1][1]:
            self._seen.append((at, position))
        # Keep the last sample from before the window too: it says where the primary was then.
        while len(self._seen) > 1 and self._seen[1][0] < at - self.keep:
            self._seen.popleft()

    @property
    def latest(self) -> Lsn | None:
        return self._seen[-1][1] if self._seen else None

    def lag(
        self, replayed: Lsn, now: float, *, since_last_replayed_commit: float | None
    ) -> float | None:
        """Seconds the replica at `replayed` has been behind; None when that is not known.

        When the primary was already past `replayed` at the oldest sample kept (the monitor
        has just started, or the replica has been behind longer than `keep`), the time since
        the replica's last replayed commit stands in: it can only overstate the lag.
        """
        latest = self.latest
        if latest is None:
            return None
        if replayed >= latest:
            return 0.0
        for index, (at, position) in enumerate(self._seen):
            if position > replayed:
                if index > 0:
                    return max(0.0, now - at)
                break
        return None if since_last_replayed_commit is None else max(0.0, since_last_replayed_commit)
