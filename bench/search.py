"""Search benchmark: p50 and p95 of typical searches on a seeded data set.

    .venv/bin/python bench/search.py [--users 100000] [--posts 1000000] [--repeat 50]
                                     [--database-url URL] [--write docs/benchmarks.md]

Seeds a fresh database with `microblog seed` (on the embedded server unless --database-url
names one), then runs each kind of search the way GET /search does (microblog/search/queries.py,
on one pooled connection, prepared as the app's statements are), for an anonymous reader and
for one who blocks and mutes, `--repeat` times each with terms drawn from the seed's own words
and names. The target: p95 under 100 ms at 1,000,000 posts and 100,000 users.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import report
import stack

from microblog.db.pools import open_pool
from microblog.search import queries
from microblog.search.parse import parse
from microblog.seed_words import FIRST_NAMES, TAGS, WORDS
from microblog.web.pagination import PAGE_SIZE

SECTION = "## Search"
TARGET_P95_MS = 100.0
# Words the seed writes that carry meaning (stop words such as "the" match nothing).
CONTENT_WORDS = [word for word in WORDS if len(word) > 3]


def _typo(name: str, rng: random.Random) -> str:
    """A first name with one of its letters after the first mistyped."""
    i = rng.randrange(1, len(name))
    return name[:i] + rng.choice([c for c in "aeiounrst" if c != name[i]]) + name[i + 1 :]


def searches(rng: random.Random, usernames: list[str]) -> dict[str, Callable[[], str]]:
    """Each kind of search: what a visitor would type, drawn afresh for every run."""
    return {
        "a word": lambda: rng.choice(CONTENT_WORDS),
        "a phrase": lambda: '"' + " ".join(rng.sample(CONTENT_WORDS, 2)) + '"',
        "#tag": lambda: "#" + rng.choice(TAGS),
        "from:user word": lambda: f"from:{rng.choice(usernames)} {rng.choice(CONTENT_WORDS)}",
        "a people prefix": lambda: rng.choice(FIRST_NAMES).lower()[:3],
        "a typo in a name": lambda: _typo(rng.choice(FIRST_NAMES).lower(), rng),
    }


async def _search(conn, text: str, viewer_id: int | None) -> None:
    """What GET /search reads for this text: the people, then a page of posts."""
    query = parse(text)
    if query.name:
        await queries.people(conn, query.name, viewer_id)
    await queries.posts(conn, query, viewer_id, 0, PAGE_SIZE + 1)


async def measure(database_url: str, repeat: int) -> dict[str, tuple[float, float]]:
    """{kind of search: (p50 ms, p95 ms)} over anonymous and blocking readers alike."""
    async with (
        open_pool(database_url, size=1, application_name="search bench") as pool,
        pool.acquire() as conn,
    ):
        usernames = [r[0] for r in await conn.fetch("SELECT username FROM users LIMIT 5000")]
        blocker = await conn.fetchval("SELECT blocker_id FROM blocks LIMIT 1")
        results = {}
        kinds = searches(random.Random(17), usernames)
        for draw in kinds.values():  # warm the caches and the prepared statements first
            for _ in range(5):
                await _search(conn, draw(), None)
        for kind, draw in kinds.items():
            timings = []
            for n in range(repeat):
                text, viewer = draw(), (blocker if n % 2 else None)
                started = time.perf_counter()
                await _search(conn, text, viewer)
                timings.append((time.perf_counter() - started) * 1000)
            p95 = statistics.quantiles(timings, n=20)[-1]
            results[kind] = (statistics.median(timings), p95)
            stack.log(f"{kind}: p50 {results[kind][0]:.1f} ms, p95 {p95:.1f} ms")
    return results


def markdown(results: dict[str, tuple[float, float]], args: argparse.Namespace) -> str:
    lines = [
        SECTION,
        "",
        f"`{report.command_line(sys.argv)}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        f"{args.posts:,} posts, {args.users:,} users. Each kind of search {args.repeat} times, "
        "every other one by a reader who blocks and mutes; each is what GET /search reads for "
        "it (the people for a name, then the first page of posts), timed from the client on "
        "one pooled connection. Target: p95 under "
        f"{TARGET_P95_MS:.0f} ms at 1,000,000 posts and 100,000 users.",
        "",
        "| search | p50 | p95 | target |",
        "|---|---:|---:|---|",
    ]
    at_size = args.posts >= 1_000_000 and args.users >= 100_000
    for kind, (p50, p95) in results.items():
        verdict = "met" if p95 < TARGET_P95_MS else "**not met**"
        if not at_size:
            verdict += " (below the target's size)"
        lines.append(f"| {kind} | {p50:.1f} ms | {p95:.1f} ms | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--users", type=int, default=100_000)
    options.add_argument("--posts", type=int, default=1_000_000)
    options.add_argument("--follows", type=int, help="default: 20 per user, as the seed does")
    options.add_argument("--repeat", type=int, default=50, help="runs of each kind of search")
    options.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    options.add_argument("--write", type=Path, help="record the results in this markdown file")
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="searchbench-") as tmp, stack.processes() as started:
        server_url = args.database_url or stack.embedded_database(started, Path(tmp) / "pg")
        url = stack.fresh_database(server_url, "searchbench")
        sizes = ["--users", args.users, "--posts", args.posts]
        if args.follows is not None:
            sizes += ["--follows", args.follows]
        stack.seed(url, *sizes)
        results = asyncio.run(measure(url, args.repeat))
    report.publish(markdown(results, args), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
