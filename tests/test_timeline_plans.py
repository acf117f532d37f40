"""The hot queries never scan the posts table: checked with EXPLAIN on 100,000 posts.

Both the custom plan (literal parameters) and the generic plan (what a prepared statement may
switch to after a few runs) are checked, since asyncpg prepares every statement.
"""

from __future__ import annotations

import asyncio
import json
import os

import asyncpg
import pytest

from microblog.db.keyset import BIGINT_MAX
from microblog.timelines import queries
from tests.conftest import with_database

USERS, POSTS = 1_000, 100_000


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
        SELECT 1 + (g * 7919) % $1, 'post number ' || g, now() - make_interval(secs => $2 - g)
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
    """One database for the module: 1,000 users, 100,000 posts, user 1 following 50 others."""
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


def _sequential_scans_of_posts(explained: str) -> list[dict]:
    plan = json.loads(explained)[0]["Plan"]
    return [
        node
        for node in _nodes(plan)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "posts"
    ]


CASES = {
    "home": (queries.HOME, (1, BIGINT_MAX, 21)),
    "home, later page": (queries.HOME, (1, POSTS // 2, 21)),
    "public": (queries.PUBLIC, (None, BIGINT_MAX, 21)),
    "public, later page": (queries.PUBLIC, (None, POSTS // 2, 21)),
    "profile": (queries.PROFILE, (None, 7, BIGINT_MAX, 21)),
    "profile, later page": (queries.PROFILE, (None, 7, POSTS // 2, 21)),
    "tag": (queries.TAGGED, (None, "topic", BIGINT_MAX, 21)),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_timeline_query_does_not_scan_posts(seeded, name, plan_mode):
    sql, args = CASES[name]
    await seeded.execute(f"SET plan_cache_mode = {plan_mode}")
    async with seeded.transaction():
        # A prepared statement lets EXPLAIN show the plan the app's own statements would get.
        statement = await seeded.prepare(f"EXPLAIN (FORMAT JSON) {sql}")
        explained = await statement.fetchval(*args)
    scans = _sequential_scans_of_posts(explained)
    assert scans == [], f"{name} ({plan_mode}) scans posts:\n{explained}"


async def test_the_seeded_timelines_return_full_pages(seeded):
    """The plans above are for queries that really return data."""
    assert len(await queries.home(seeded, 1, None, 20)) == 20
    assert len(await queries.public(seeded, None, None, 20)) == 20
    assert len(await queries.profile(seeded, 7, None, None, 20)) == 20
    assert len(await queries.tagged(seeded, "topic", None, None, 20)) == 20
