"""The replica benchmark's measurements in one process: what routing a read costs, and what
reading the primary's WAL position after a commit costs (bench/replica.py runs them)."""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg

from microblog.config import Settings
from microblog.db.lsn import Lsn
from microblog.db.pools import acquire, open_pool, open_pools
from microblog.db.reading import Reading
from microblog.web.read_your_writes import POSITION_NOW

BARE, ROUTED = "bare loop", "reading() entered and left"


async def _per_call_us(operation, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await operation()
    return (time.perf_counter() - started) / count * 1e6


def _median_rounds(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


async def routing(primary_url: str, replica_url: str, count: int, rounds: int) -> dict:
    settings = Settings(
        database_url=primary_url, replica_database_urls=(replica_url,), secret_key_base="x" * 32
    )
    async with open_pools(settings, application_name="microblog bench routing") as pools:
        async with pools.replicas.monitoring():
            for _ in range(100):  # the replica has only just begun taking connections
                await pools.replicas.probe()
                if pools.replicas.statuses[0].up:
                    break
                await asyncio.sleep(0.1)
            assert pools.replicas.statuses[0].up, pools.replicas.statuses
            required = Lsn(1)

            async def bare() -> None:
                pass

            async def route() -> None:
                async with Reading(pools.primary, pools.replicas, required, wait=10):
                    pass

            operations = {BARE: bare, ROUTED: route}
            samples: dict[str, list[float]] = {name: [] for name in operations}
            for _ in range(rounds):
                for name, operation in operations.items():
                    samples[name].append(await _per_call_us(operation, count))
            assert pools.replicas.reads, "the routing decisions were counted"
        return _median_rounds(samples)


async def position_cost(primary_url: str, count: int, rounds: int) -> dict[str, float]:
    """µs per transaction: a one-statement transaction, then with the position read after."""
    async with open_pool(primary_url, size=2, application_name="microblog bench") as pool:

        async def commit(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute("SELECT 1")

        async def alone() -> None:
            async with acquire(pool, 10) as conn:
                await commit(conn)

        async def same_connection() -> None:
            async with acquire(pool, 10) as conn:
                await commit(conn)
                await conn.fetchval(POSITION_NOW)

        async def freed_connection() -> None:  # as the after-commit callback reads it
            await alone()
            async with acquire(pool, 10) as conn:
                await conn.fetchval(POSITION_NOW)

        operations = {
            "transaction alone": alone,
            "position on the committing connection": same_connection,
            "position after release (as the app does)": freed_connection,
        }
        samples: dict[str, list[float]] = {name: [] for name in operations}
        for operation in operations.values():
            await _per_call_us(operation, 100)
        for _ in range(rounds):
            for name, operation in operations.items():
                samples[name].append(await _per_call_us(operation, count))
        return _median_rounds(samples)
