"""The shared cache: JSON values with a time to live, in PostgreSQL, for every instance.

    value = await cache.fetch("public:first-page", ttl=60, compute=render_page)

Reads never return an expired entry. Concurrent fetches of one missing key in one process
share a single computation. A cache that cannot be reached is a miss (and is counted as an
error), never a failed request: the caller computes the value itself. A query that fails for
any other reason is a bug, and raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire

log = logging.getLogger(__name__)

# A cache lookup that waits longer than this for a connection is a miss, not a slow page.
ACQUIRE_TIMEOUT = 1.0


GET = """
    SELECT value FROM infra.cache_entries
    WHERE key_hash = $1 AND key = $2 AND expires_at > now()
"""

GET_MANY = """
    SELECT c.key, c.value
    FROM unnest($1::bigint[], $2::text[]) AS wanted (key_hash, key)
    JOIN infra.cache_entries c ON c.key_hash = wanted.key_hash AND c.key = wanted.key
    WHERE c.expires_at > now()
"""

_REPLACE = """
    ON CONFLICT (key_hash) DO UPDATE SET
        key = excluded.key, value = excluded.value, byte_size = excluded.byte_size,
        expires_at = excluded.expires_at, created_at = now()
"""

SET = (
    """
    INSERT INTO infra.cache_entries (key_hash, key, value, byte_size, expires_at)
    VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
"""
    + _REPLACE
)

SET_MANY = (
    """
    INSERT INTO infra.cache_entries (key_hash, key, value, byte_size, expires_at)
    SELECT e.key_hash, e.key, e.value, e.byte_size, now() + make_interval(secs => $5)
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[])
         AS e (key_hash, key, value, byte_size)
    ORDER BY e.key_hash
"""
    + _REPLACE
)


def key_hash(key: str) -> int:
    """A stable signed 64-bit hash of the key, for the index."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _size(key: str, encoded: str) -> int:
    return len(key.encode()) + len(encoded.encode())


@dataclass
class CacheStats:
    """Counted per process, for monitoring."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: int = 0


class Cache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.stats = CacheStats()
        self._computing: dict[str, asyncio.Future] = {}

    async def get(self, key: str) -> Any | None:
        try:
            async with acquire(self.pool, ACQUIRE_TIMEOUT) as conn:
                value = await conn.fetchval(GET, key_hash(key), key)
        except DATABASE_OUTAGE as error:
            self._failed("get", error)
            value = None
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return json.loads(value)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The live entries among `keys`; missing and expired keys are absent."""
        keys = list(dict.fromkeys(keys))
        found = await self._read(keys)
        self.stats.hits += len(found)
        self.stats.misses += len(keys) - len(found)
        return found

    async def _read(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        try:
            async with acquire(self.pool, ACQUIRE_TIMEOUT) as conn:
                rows = await conn.fetch(GET_MANY, [key_hash(key) for key in keys], keys)
        except DATABASE_OUTAGE as error:
            self._failed("get", error)
            rows = []
        for row in rows:
            found[row["key"]] = json.loads(row["value"])
        return found

    async def set(self, key: str, value: Any, ttl: float) -> None:
        encoded = _encode(value)
        await self._write(SET, 1, key_hash(key), key, encoded, _size(key, encoded), ttl)

    async def set_many(self, entries: dict[str, Any], ttl: float) -> None:
        """Store several entries in one round trip."""
        if not entries:
            return
        keys = list(entries)
        encoded = [_encode(entries[key]) for key in keys]
        sizes = [_size(k, v) for k, v in zip(keys, encoded, strict=True)]
        hashes = [key_hash(key) for key in keys]
        await self._write(SET_MANY, len(keys), hashes, keys, encoded, sizes, ttl)

    async def _write(self, statement: str, count: int, *args: Any) -> None:
        try:
            async with acquire(self.pool, ACQUIRE_TIMEOUT) as conn:
                await conn.execute(statement, *args)
            self.stats.writes += count
        except DATABASE_OUTAGE as error:
            self._failed("set", error)

    async def delete(self, key: str) -> None:
        try:
            async with acquire(self.pool, ACQUIRE_TIMEOUT) as conn:
                await conn.execute(
                    "DELETE FROM infra.cache_entries WHERE key_hash = $1 AND key = $2",
                    key_hash(key),
                    key,
                )
        except DATABASE_OUTAGE as error:
            self._failed("delete", error)

    async def increment(self, key: str, by: int = 1, ttl: float = 86400.0) -> int:
        """Add `by` to an integer entry atomically (a missing or expired one counts as 0)."""
        async with acquire(self.pool, ACQUIRE_TIMEOUT) as conn:
            return await conn.fetchval(
                """
                INSERT INTO infra.cache_entries AS c (key_hash, key, value, byte_size, expires_at)
                VALUES ($1, $2, $3::bigint::text, 20, now() + make_interval(secs => $4))
                ON CONFLICT (key_hash) DO UPDATE SET
                    value = CASE
                        WHEN c.key = excluded.key AND c.expires_at > now()
                             AND c.value ~ '^-?[0-9]{1,18}$'
                        THEN (c.value::bigint + $3::bigint)::text
                        ELSE excluded.value END,
                    key = excluded.key, expires_at = excluded.expires_at, created_at = now()
                RETURNING value::bigint
                """,
                key_hash(key),
                key,
                by,
                ttl,
            )

    async def fetch(
        self,
        key: str,
        ttl: float,
        compute: Callable[[], Awaitable[Any]],
        *,
        version_key: str | None = None,
    ) -> Any:
        """The cached value, or compute() stored for `ttl` seconds.

        With version_key, the entry is valid only while that counter (see increment) still
        has the value it had when the entry was computed: writers invalidate every entry of a
        kind by incrementing one counter, and entry and counter are read in one round trip.
        Callers in this process that miss the same key while it is being computed wait for
        that one computation instead of starting their own.
        """
        found = await self._read([key] if version_key is None else [key, version_key])
        version = found.get(version_key, 0) if version_key else None
        entry = found.get(key)
        if entry is not None and entry.get("version") == version:
            self.stats.hits += 1
            return entry["value"]
        self.stats.misses += 1
        pending = self._computing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._computing[key] = future
        try:
            value = await compute()
            await self.set(key, {"version": version, "value": value}, ttl)
            future.set_result(value)
            return value
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so a future nobody awaited logs nothing
            raise
        finally:
            del self._computing[key]

    def _failed(self, operation: str, error: BaseException) -> None:
        self.stats.errors += 1
        log.warning(
            "cache unavailable", extra={"operation": operation, "error": type(error).__name__}
        )
