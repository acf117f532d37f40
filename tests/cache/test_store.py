"""The shared cache's API against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from microblog.cache.store import GET_MANY, Cache, key_hash
from microblog.cache.upkeep import trim
from tests.conftest import UNREACHABLE, wait_until


@pytest.fixture
def cache(pools) -> Cache:
    return Cache(pools.cache)


async def test_set_get_delete_and_get_many(cache):
    await cache.set("a", {"n": 1}, ttl=60)
    await cache.set("b", [1, "two"], ttl=60)
    assert await cache.get("a") == {"n": 1}
    assert await cache.get_many(["a", "b", "missing"]) == {"a": {"n": 1}, "b": [1, "two"]}
    await cache.delete("a")
    assert await cache.get("a") is None
    assert cache.stats.hits == 3
    assert cache.stats.misses == 2


async def test_an_expired_entry_is_never_returned(cache, db):
    await cache.set("gone", "value", ttl=0)
    assert await cache.get("gone") is None
    await cache.set("soon", "value", ttl=0.3)
    assert await cache.get("soon") == "value"
    await wait_until(lambda: _absent(cache, "soon"), within=5)
    assert await db.fetchval("SELECT count(*) FROM infra.cache_entries WHERE key = 'soon'") == 1


async def _absent(cache: Cache, key: str) -> bool:
    return await cache.get(key) is None


async def test_a_hash_collision_never_returns_another_keys_value(cache, db):
    await db.execute(
        """
        INSERT INTO infra.cache_entries (key_hash, key, value, byte_size, expires_at)
        VALUES ($1, 'some other key', '"theirs"', 10, now() + interval '1 hour')
        """,
        key_hash("mine"),
    )
    assert await cache.get("mine") is None
    await cache.set("mine", "ours", ttl=60)  # the colliding entry is evicted, not merged
    assert await cache.get("mine") == "ours"


async def test_increment_is_atomic_under_concurrency(cache):
    results = await asyncio.gather(*(cache.increment("counter") for _ in range(40)))
    assert sorted(results) == list(range(1, 41))
    assert await cache.get("counter") == 40


async def test_increment_restarts_an_expired_or_non_numeric_entry(cache):
    await cache.set("counter", 10, ttl=0)
    assert await cache.increment("counter", by=5) == 5
    await cache.set("counter", "text", ttl=60)
    assert await cache.increment("counter") == 1


async def test_fetch_computes_once_for_concurrent_callers(cache):
    calls = 0
    release = asyncio.Event()

    async def compute():
        nonlocal calls
        calls += 1
        await release.wait()
        return {"expensive": True}

    waiting = [asyncio.create_task(cache.fetch("shared", 60, compute)) for _ in range(10)]
    await wait_until(lambda: _started(lambda: calls))
    release.set()
    assert await asyncio.gather(*waiting) == [{"expensive": True}] * 10
    assert calls == 1
    assert await cache.fetch("shared", 60, compute) == {"expensive": True}
    assert calls == 1


async def _started(count) -> bool:
    await asyncio.sleep(0)
    return count() > 0


async def test_a_failed_computation_reaches_every_waiter_and_is_not_cached(cache):
    async def broken():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await cache.fetch("broken", 60, broken)
    assert await cache.get("broken") is None


async def test_a_version_bump_invalidates_versioned_entries(cache):
    computed = []

    async def compute():
        computed.append(len(computed))
        return f"render {len(computed)}"

    assert await cache.fetch("page", 60, compute, version_key="version:page") == "render 1"
    assert await cache.fetch("page", 60, compute, version_key="version:page") == "render 1"
    await cache.increment("version:page")
    assert await cache.fetch("page", 60, compute, version_key="version:page") == "render 2"
    assert len(computed) == 2


async def test_trim_removes_expired_then_oldest_entries_to_the_bounds(cache, db):
    for n in range(30):
        await cache.set(f"entry {n:02d}", "x" * 100, ttl=60)
    await cache.set("expired", "x", ttl=0)
    removed = await trim(db, max_entries=10, max_bytes=10**9)
    assert removed == 21
    keys = {r["key"] for r in await db.fetch("SELECT key FROM infra.cache_entries")}
    assert keys == {f"entry {n:02d}" for n in range(20, 30)}
    size = await db.fetchval("SELECT byte_size FROM infra.cache_entries LIMIT 1")
    await trim(db, max_entries=10, max_bytes=size * 4)
    assert await db.fetchval("SELECT count(*) FROM infra.cache_entries") == 4


async def test_an_unreachable_cache_is_a_miss_not_an_error():
    pool = await asyncpg.create_pool(UNREACHABLE, min_size=0, max_size=1)
    try:
        cache = Cache(pool)
        assert await cache.get("anything") is None
        await cache.set("anything", 1, ttl=60)
        assert cache.stats.errors == 2

        async def compute():
            return "computed anyway"

        assert await cache.fetch("anything", 60, compute) == "computed anyway"
    finally:
        await pool.close()


async def test_a_query_error_in_the_cache_is_raised_not_taken_for_a_miss(cache, db):
    await db.execute("ALTER TABLE infra.cache_entries RENAME COLUMN value TO renamed")

    async def compute():
        return "computed"

    with pytest.raises(asyncpg.UndefinedColumnError):
        await cache.get("anything")
    with pytest.raises(asyncpg.UndefinedColumnError):
        await cache.fetch("anything", 60, compute)
    with pytest.raises(asyncpg.UndefinedColumnError):
        await cache.set("anything", 1, ttl=60)
    assert cache.stats.errors == 0


async def test_a_lookup_in_a_full_cache_reads_only_the_keys_asked_for(cache, db):
    await db.execute(
        """
        INSERT INTO infra.cache_entries (key_hash, key, value, byte_size, expires_at)
        SELECT g, 'filler ' || g, '"x"', 10, now() + interval '1 hour'
        FROM generate_series(1, 100000) g
        """
    )
    await db.execute("ANALYZE infra.cache_entries")
    keys = [f"filler {n}" for n in (5, 500, 50000)]
    await db.execute("SET plan_cache_mode = force_generic_plan")  # as the app's pools run
    statement = await db.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {GET_MANY}")
    plan = await statement.fetchval([key_hash(k) for k in keys], keys)
    assert '"Seq Scan"' not in plan, plan
    assert await cache.get_many(keys) == {}  # not ours: their key_hash is not hash(key)
