"""The hot queries read a page's worth of posts, however large the table or an author's history:
checked with EXPLAIN ANALYZE on 100,000 unevenly written posts.

Both the custom plan (literal parameters) and the generic plan (what a prepared statement may
switch to after a few runs) are checked, since asyncpg prepares every statement.
"""

from __future__ import annotations

import asyncio
import json
import os
import re

import asyncpg
import pytest

from microblog.db.keyset import BIGINT_MAX
from microblog.timelines import queries
from tests.conftest import with_database

USERS, POSTS = 10_000, 100_000


async def _seed(db: asyncpg.Connection) -> None:
    await db.execute(
        """
        INSERT INTO users (username, password_hash)
        SELECT 'user' || g, 'x' FROM generate_series(1, $1) g
        """,
        USERS,
    )
    await db.execute(
        """
        INSERT INTO posts (author_id, body, created_at)
        SELECT 1 + floor($1 * power(random(), 4))::int, 'post number ' || g,
               now() - make_interval(secs => $2 - g)
        FROM generate_series(1, $2) g
        """,
        USERS,
        POSTS,
    )
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id) SELECT 1, g FROM generate_series(2, 51) g"
    )
    await db.execute(
        "INSERT INTO post_tags (tag, post_id) SELECT 'topic', g FROM generate_series(1, $1, 10) g",
        POSTS,
    )
    await db.execute("ANALYZE")


@pytest.fixture(scope="module")
def seeded_url(server_url, template_database):
    """One database for the module: 10,000 users, 100,000 posts, user 1 following 50 others.

    Authors are as uneven as on a real site: user 1 writes about a sixth of all posts and most
    write a handful: a planner that assumes the average (ten) for every author goes wrong.
    """
    name = f"timeline_plans_{os.getpid()}"

    async def run(sql: str, database: str = "postgres") -> None:
        conn = await asyncpg.connect(with_database(server_url, database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create() -> None:
        await run(f'DROP DATABASE IF EXISTS "{name}"')
        await run(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await _seed(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    yield with_database(server_url, name)
    asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def seeded(seeded_url):
    conn = await asyncpg.connect(seeded_url)
    yield conn
    await conn.close()


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


PAGE = 21  # what the timelines ask for: a page of 20 and one to know if there is more
# Walking an index and filtering may read a few rows per row kept; reading an author's whole
# history (a bitmap scan, then a sort) or the table is what must never happen.
BUDGET = 20 * PAGE


def _scans_of_posts(explained: str) -> list[dict]:
    plan = json.loads(explained)[0]["Plan"]
    return [node for node in _nodes(plan) if node.get("Relation Name") == "posts"]


def _too_much_work(explained: str) -> list[str]:
    """Scans of posts that read the table, or far more rows per loop than a page needs: what
    makes a timeline's cost grow with the size of the table or of one author's history."""
    problems = []
    for node in _scans_of_posts(explained):
        read = (
            node["Actual Rows"]
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        if node["Node Type"] == "Seq Scan" or read > BUDGET:
            problems.append(f"{node['Node Type']} reading {read} rows per loop")
    return problems


CASES = {
    "home": (queries.HOME, (1, BIGINT_MAX, PAGE)),
    "home, later page": (queries.HOME, (1, POSTS // 2, PAGE)),
    "public": (queries.PUBLIC, (None, BIGINT_MAX, PAGE)),
    "public, later page": (queries.PUBLIC, (None, POSTS // 2, PAGE)),
    "profile of the busiest author": (queries.PROFILE, (None, 1, BIGINT_MAX, PAGE)),
    "profile, later page": (queries.PROFILE, (None, 1, POSTS // 2, PAGE)),
    "profile of a quiet author": (queries.PROFILE, (None, 9000, BIGINT_MAX, PAGE)),
    "tag": (queries.TAGGED, (None, "topic", BIGINT_MAX, PAGE)),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_timeline_query_reads_no_more_posts_than_a_page_needs(seeded, name, plan_mode):
    sql, args = CASES[name]
    await seeded.execute(f"SET plan_cache_mode = {plan_mode}")
    async with seeded.transaction():
        # A prepared statement lets EXPLAIN show the plan the app's own statements would get.
        statement = await seeded.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        explained = await statement.fetchval(*args)
    assert _too_much_work(explained) == [], f"{name} ({plan_mode}):\n{explained}"


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_home_timeline_function_reads_each_author_through_the_index(seeded, plan_mode):
    """home_timeline_ids hides its plan from EXPLAIN: explain its query, with its settings."""
    source, settings = await seeded.fetchrow(
        "SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'home_timeline_ids'"
    )
    body = re.fullmatch(r"\s*BEGIN\s+RETURN QUERY\s+(.+?);\s*END\s*", source, re.DOTALL)[1]
    async with seeded.transaction():
        for setting in settings:
            name, value = setting.split("=", 1)
            await seeded.execute(f"SET LOCAL {name} = {value}")
        await seeded.execute(f"SET LOCAL plan_cache_mode = {plan_mode}")
        statement = await seeded.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {body}")
        explained = await statement.fetchval(1, BIGINT_MAX, PAGE)
    assert _too_much_work(explained) == [], explained


async def test_the_seeded_timelines_return_full_pages(seeded):
    """The plans above are for queries that really return data."""
    assert len(await queries.home(seeded, 1, None, 20)) == 20
    assert len(await queries.public(seeded, None, None, 20)) == 20
    assert len(await queries.profile(seeded, 1, None, None, 20)) == 20
    assert len(await queries.tagged(seeded, "topic", None, None, 20)) == 20
