"""How the home timeline's cost grows with work: readers following 10 to 5,000 accounts, on a
data set of two sizes, read through the primary and through a streaming replica.

The small data set is seeded with the readers (`microblog seed --readers`); the large one is a
copy of it grown with `microblog seed --grow`, so the two differ only in their posts. An
instance serves each data set from the primary, and one more each is given the replica as its
REPLICA_DATABASE_URL; every reader's home page is measured on every one of them in turn,
within each round, and the home query's EXPLAIN (ANALYZE, BUFFERS) is taken on the server each
route reads from.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import stack
from growth_report import Explained, GrowthRun, Route, parse_explain
from measure import Instance, measure

from microblog.db.keyset import BIGINT_MAX
from microblog.seed_growth import reader_name
from microblog.timelines.queries import HOME
from microblog.web.pagination import PAGE_SIZE

READERS = (10, 100, 1_000, 5_000)


@dataclass(frozen=True)
class GrowthSizes:
    users: int
    follows: int
    posts: tuple[int, int]  # the small data set's, then the large one's
    seconds: int
    connections: int
    rounds: int


def prepare(server_url: str, sizes: GrowthSizes) -> dict[int, str]:
    """The two data sets' databases, by their number of posts."""
    small, large = sizes.posts
    readers = ",".join(map(str, READERS))
    small_url = stack.fresh_database(server_url, "growth_small")
    stack.seed(small_url, "--users", sizes.users, "--posts", small, "--follows", sizes.follows,
               "--readers", readers)  # fmt: skip
    large_url = stack.create_database(server_url, "growth_large", template="growth_small")
    stack.seed(large_url, "--grow", "--posts", large - small)
    return {small: small_url, large: large_url}


def start_routes(
    started: list, databases: dict[int, str], replica_url: str | None, scratch: Path
) -> list[Route]:
    """An instance for each data set and way of reading it; all share one data folder, and so
    the key that signs sessions: a reader's cookie works on every one of them."""
    routes = []
    for posts, url in databases.items():
        (server,) = stack.start_servers(started, "microblog", 1, url, scratch)
        routes.append(Route(posts, "primary", server, url))
        if replica_url is not None:
            on_replica = stack.with_database(replica_url, stack.database_name(url))
            (server,) = stack.start_servers(
                started, "microblog", 1, url, scratch, {"REPLICA_DATABASE_URL": on_replica}
            )
            routes.append(Route(posts, "replica", server, on_replica))
    return routes


def run_rounds(sizes: GrowthSizes, routes: list[Route], servers: dict[str, int]) -> list:
    """Every reader on every route, in turn, each round; servers: the PostgreSQL servers to
    count, by name (the primary's "postgres", the replica's "replica")."""
    cookies = {n: stack.log_in(routes[0].server, reader_name(n)) for n in READERS}
    shown = {
        (r.posts, r.how, n): posts_shown(r.server, cookies[n]) for r in routes for n in READERS
    }
    runs = []
    for number in range(1, sizes.rounds + 1):
        for route in routes:
            for following in READERS:
                measured = measure(
                    route.server.url + "/", sizes.connections, sizes.seconds, cookies[following],
                    [Instance(route.server.popen.pid)], servers, None,
                )  # fmt: skip
                key = (route.posts, route.how, following)
                run = GrowthRun(number, *key, shown[key], measured)
                runs.append(run)
                stack.log(
                    f"round {number}: home of {reader_name(following)}, {route.posts:,} posts, "
                    f"{route.how}: {measured.report.requests_per_second:,.0f} req/s, "
                    f"p99 {measured.report.p99_ms:.0f} ms, "
                    f"{run.cpu_ms:.2f} ms of CPU per request"
                )
    return runs


def posts_shown(server: stack.Server, cookie: str) -> int:
    """How many posts a reader's home page shows; it must be the page, not a redirect."""
    response = httpx.get(server.url + "/", headers={"Cookie": cookie})
    if response.status_code != 200:
        raise SystemExit(f"the home page answered {response.status_code}, not 200")
    return response.text.count('<article class="post')


def explain_all(routes: list[Route]) -> dict[tuple[int, str, int], Explained]:
    """The home query's plan for every reader on the server every route reads from."""
    return {
        (route.posts, route.how, following): asyncio.run(
            explain(route.database_url, reader_name(following))
        )
        for route in routes
        for following in READERS
    }


async def explain(database_url: str, username: str) -> Explained:
    """EXPLAIN (ANALYZE, BUFFERS) of the home query as the app runs it: prepared, with the
    pools' generic plans, for the first page; the second of two runs, with warm caches."""
    conn = await asyncpg.connect(
        database_url, server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    try:
        user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
        statement = await conn.prepare(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {HOME}")
        for _ in range(2):
            explained = await statement.fetchval(user_id, BIGINT_MAX, PAGE_SIZE + 1)
    finally:
        await conn.close()
    return parse_explain(json.loads(explained))
