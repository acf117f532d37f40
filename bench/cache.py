"""Cache and rate-limit benchmark: our operations beside a bare round trip on the same pool.

    .venv/bin/python bench/cache.py [--quick] [--database-url URL] [--write docs/benchmarks.md]

Part 1, in one process on one pool: `SELECT 1` through the pool (the floor: one round trip),
a cache get that hits, a cache set, and a rate-limit check (one admitted GCRA step), one after
another, in interleaved rounds so that drift hits them all alike.

Part 2: the public timeline for anonymous visitors, one instance with the cache on and one
with it off, side by side on the same seeded database, measured with wrk.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import options
import report
import stack
from measure import Instance, Measurement, measure

from microblog.cache.store import Cache
from microblog.db.pools import open_pool
from microblog.ratelimit.store import Check, admit

SECTION = "## Cache and rate limits"
CARD = "<article>" + "x" * 1200 + "</article>"  # about the size of a cached post card
FLOOR = "SELECT 1 through the pool (floor)"
CONNECTIONS = 32


async def _timed(operation: Callable[[], Awaitable[object]], count: int) -> float:
    """Microseconds per operation, over `count` operations in a row."""
    started = time.perf_counter()
    for _ in range(count):
        await operation()
    return (time.perf_counter() - started) / count * 1e6


async def micro(database_url: str, count: int, rounds: int) -> dict[str, tuple[float, float]]:
    """{operation: (median µs each, median ratio to the floor of the same round)}."""
    async with open_pool(database_url, size=1, application_name="cache bench") as pool:
        return await _micro(pool, count, rounds)


async def _micro(pool: asyncpg.Pool, count: int, rounds: int) -> dict[str, tuple[float, float]]:
    """On a pool opened the way the app opens its pools."""
    cache = Cache(pool)
    await cache.set("bench:hit", CARD, ttl=3600)
    check = Check("bench:rate", inverse=1e-9, period=3600.0)  # always admitted: a full step

    async def floor() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def rate_limit() -> None:
        async with pool.acquire() as conn:
            await admit(conn, [check])

    operations = {
        FLOOR: floor,
        "cache get (hit, 1.2 kB)": lambda: cache.get("bench:hit"),
        "cache set (1.2 kB)": lambda: cache.set("bench:set", CARD, ttl=3600),
        "rate-limit check (admitted)": rate_limit,
    }
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for operation in operations.values():  # warm the statement caches
        await _timed(operation, 200)
    for _ in range(rounds):
        for name, operation in operations.items():
            samples[name].append(await _timed(operation, count))
    assert cache.stats.errors == 0, cache.stats
    floors = samples[FLOOR]
    # This machine's speed drifts from second to second: each round's ratio compares
    # operations timed moments apart, and the median of those ratios is the figure.
    return {
        name: (
            statistics.median(values),
            statistics.median(v / f for v, f in zip(values, floors, strict=True)),
        )
        for name, values in samples.items()
    }


def public_timeline(
    database_url: str, sizes: options.Sizes, started: list, scratch: Path
) -> dict[str, Measurement]:
    results = {}
    servers = {}
    for switch in ("on", "off"):
        os.environ["CACHE"] = switch
        data = scratch / f"cache-{switch}"
        servers[switch] = stack.start_servers(started, "microblog", 1, database_url, data)[0]
    os.environ.pop("CACHE")
    for switch, server in servers.items():
        stack.log(f"public timeline, cache {switch} ...")
        instances = [Instance(server.popen.pid)]
        results[switch] = measure(f"{server.url}/public", CONNECTIONS, sizes.seconds, None,
                                  instances, {}, budget=None)  # fmt: skip
    return results


def markdown(
    micro_results: dict[str, tuple[float, float]],
    timeline: dict[str, Measurement],
    sizes: options.Sizes,
    command: str,
) -> str:
    lines = [
        SECTION,
        f"`{command}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.",
        "| operation | µs each (median) | per second | / floor (median of rounds) | target |",
        "|---|---:|---:|---:|---|",
    ]
    for name, (micros, ratio) in micro_results.items():
        target = "" if "floor" in name else ("≤ 1.5 ✓" if ratio <= 1.5 else "≤ 1.5 ✗")
        lines.append(f"| {name} | {micros:,.0f} | {1e6 / micros:,.0f} | {ratio:.2f} | {target} |")
    on, off = timeline["on"], timeline["off"]
    lines += [
        "",
        f"Public timeline for anonymous visitors, one instance, wrk -t2 -c{CONNECTIONS} "
        f"for {sizes.seconds} s on {sizes.users:,} users and {sizes.posts:,} posts:",
        "",
        "| cache | req/s | p50 ms | p99 ms | errors | CPU cores: app / wrk |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for switch, result in (("on", on), ("off", off)):
        wrk = result.report
        lines.append(
            f"| {switch} | {wrk.requests_per_second:,.0f} | {wrk.p50_ms:.1f} | "
            f"{wrk.p99_ms:.1f} | {wrk.errors} | "
            f"{result.cores['app']:.2f} / {result.cores['wrk']:.2f} |"
        )
    ratio = on.report.requests_per_second / off.report.requests_per_second
    lines += ["", f"Cache on / cache off: **{ratio:.2f}x**."]
    return "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])


def main() -> int:
    args, sizes = options.arguments(__doc__.splitlines()[0])
    count, rounds = (500, 3) if args.quick else (2_000, 15)
    stack.require("wrk")
    with tempfile.TemporaryDirectory(prefix="cachebench-") as tmp, stack.processes() as started:
        scratch = Path(tmp)
        server_url = args.database_url or stack.embedded_database(started, scratch / "pg")
        # First, on a quiet empty database: nothing from the bulk load of the seed (checkpoints,
        # autovacuum) running beside the round trips being timed.
        stack.log("cache and rate-limit operations ...")
        micro_url = stack.fresh_database(server_url, "cachebench")
        micro_results = asyncio.run(micro(micro_url, count, rounds))
        database_url = stack.prepare(server_url, sizes.users, sizes.posts, sizes.follows)
        timeline = public_timeline(database_url, sizes, started, scratch)
    command = "python bench/cache.py" + (" --quick" if args.quick else "")
    text = markdown(micro_results, timeline, sizes, command)
    report.publish(text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
