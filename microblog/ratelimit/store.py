"""GCRA in one SQL statement, so instances racing on one key never admit too many.

Each key stores its theoretical arrival time (tat). A request is admitted when
max(tat, now) + inverse - now <= period, and then tat becomes max(tat, now) + inverse. The
INSERT ... ON CONFLICT DO UPDATE ... WHERE holds the row lock while it decides, so concurrent
checks of one key run one after another; keys are taken in sorted order, so requests that
check several keys cannot deadlock.

A request is admitted only when all of its checks admit it, and a refused request counts
against none of them: what its other checks counted is given back at once. Otherwise a flood
refused by a narrow limit (one address) would still use up a wide one (one account, from
everywhere), and lock its owner out.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Check:
    key: str
    inverse: float  # seconds per request
    period: float  # seconds


@dataclass(frozen=True)
class Verdict:
    key: str
    admitted: bool
    ahead: float  # seconds from now to the key's theoretical arrival time (0 or more)

    def retry_after(self, check: Check) -> float:
        """Seconds until this key admits another request."""
        return max(self.ahead - (check.period - check.inverse), 0.0)

    def remaining(self, check: Check) -> int:
        """Requests still admitted right now."""
        return max(int((check.period - self.ahead) / check.inverse), 0)


_DECIDE = """
    ON CONFLICT (key) DO UPDATE
        SET tat = greatest(r.tat, now()) + (excluded.tat - now()), period = excluded.period
        WHERE greatest(r.tat, now()) + (excluded.tat - now()) - now() <= excluded.period
    RETURNING r.key, greatest(extract(epoch FROM r.tat - now()), 0)::float8 AS ahead
"""

_ADMIT_ONE = (
    """
    INSERT INTO infra.rate_limits AS r (key, tat, period)
    VALUES ($1, now() + make_interval(secs => $2), make_interval(secs => $3))
"""
    + _DECIDE
)

_ADMIT_MANY = (
    """
    INSERT INTO infra.rate_limits AS r (key, tat, period)
    SELECT c.key, now() + make_interval(secs => c.inverse), make_interval(secs => c.period)
    FROM unnest($1::text[], $2::float8[], $3::float8[]) AS c (key, inverse, period)
    ORDER BY c.key
"""
    + _DECIDE
)


async def admit(conn: asyncpg.Connection, checks: list[Check]) -> list[Verdict]:
    """Each check's own verdict, decided atomically per key; when any refuses, none counts."""
    checks = sorted(checks, key=lambda c: c.key)
    if len(checks) == 1:  # most requests: the same statement without arrays
        [check] = checks
        rows = await conn.fetch(_ADMIT_ONE, check.key, check.inverse, check.period)
    else:
        rows = await conn.fetch(
            _ADMIT_MANY,
            [c.key for c in checks],
            [c.inverse for c in checks],
            [c.period for c in checks],
        )
    admitted = {row["key"]: Verdict(row["key"], True, row["ahead"]) for row in rows}
    refused = [c.key for c in checks if c.key not in admitted]
    if refused:
        if counted := [c for c in checks if c.key in admitted]:
            await give_back(conn, counted)
        rows = await conn.fetch(
            """
            SELECT key, greatest(extract(epoch FROM tat - now()), 0)::float8 AS ahead
            FROM infra.rate_limits WHERE key = ANY($1::text[])
            """,
            refused,
        )
        for row in rows:
            admitted[row["key"]] = Verdict(row["key"], False, row["ahead"])
    return [admitted[c.key] for c in checks if c.key in admitted]


async def give_back(conn: asyncpg.Connection, checks: list[Check]) -> None:
    """Undo one admission of each check, as if that request had never been counted: its tat
    moves back by the interval the admission added (a tat in the past means a full allowance,
    as no row does). In sorted order, as admit() takes the keys, in one round trip."""
    await conn.executemany(
        "UPDATE infra.rate_limits SET tat = tat - make_interval(secs => $2) WHERE key = $1",
        [(c.key, c.inverse) for c in sorted(checks, key=lambda c: c.key)],
    )


async def prune(conn: asyncpg.Connection) -> int:
    """Keys whose tat has passed hold no information: delete them."""
    return await conn.fetchval(
        "WITH gone AS (DELETE FROM infra.rate_limits WHERE tat < now() RETURNING 1) "
        "SELECT count(*) FROM gone"
    )
