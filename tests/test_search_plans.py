"""Search reads through its GIN indexes, and no more rows than a page of results needs, on
100,000 posts and 10,000 people: checked with EXPLAIN ANALYZE.

The posts' statement runs inside search_posts() as dynamic SQL, planned for the values at
hand (a custom plan), so it is explained that way; the people's statement is prepared by the
app, so its generic plan is checked too.
"""

from __future__ import annotations

import json
import os

import asyncpg
import pytest

from microblog.search import queries
from tests.conftest import seeded_database
from tests.test_timeline_plans import _nodes

USERS, POSTS = 10_000, 100_000
COMMON = ["coffee", "rain", "music", "garden", "train", "window", "morning", "bread"]


async def _seed(db: asyncpg.Connection) -> None:
    await db.execute(
        """
        INSERT INTO users (username, display_name, password_hash)
        SELECT (ARRAY['ada','ben','chloe','dev','elena','farid','grace','hugo'])[1 + g % 8] || g,
               (ARRAY['Ada','Ben','Chloe','Dev','Elena','Farid','Grace','Hugo'])[1 + g % 8]
               || ' ' || (ARRAY['Lovelace','Okafor','Tanaka','Moreau'])[1 + g % 4],
               'x'
        FROM generate_series(1, $1) g
        """,
        USERS,
    )
    # Common words in about one post in four each; "zeppelin" in one in 5,000.
    await db.execute(
        """
        INSERT INTO posts (author_id, body)
        SELECT 1 + floor($1 * power(random(), 4))::int,
               ($3::text[])[1 + floor(random() * 8)::int] || ' '
               || ($3::text[])[1 + floor(random() * 8)::int]
               || ' and ' || ($3::text[])[1 + floor(random() * 8)::int]
               || CASE WHEN g % 5000 = 0 THEN ' zeppelin over the harbour' ELSE '' END
        FROM generate_series(1, $2) g
        """,
        USERS,
        POSTS,
        COMMON,
    )
    await db.execute(
        "INSERT INTO post_tags (tag, post_id) SELECT 'topic', id FROM posts WHERE id % 10 = 0"
    )
    await db.execute(
        "INSERT INTO post_tags (tag, post_id) SELECT 'rare', id FROM posts WHERE id % 4000 = 0"
    )
    await db.execute(
        "INSERT INTO blocks (blocker_id, blocked_id) SELECT 1, g FROM generate_series(60, 69) g"
    )
    await db.execute("VACUUM (ANALYZE)")


@pytest.fixture(scope="module")
def seeded_url(server_url, template_database):
    yield from seeded_database(server_url, template_database, f"search_plans_{os.getpid()}", _seed)


@pytest.fixture
async def seeded(seeded_url):
    conn = await asyncpg.connect(seeded_url)
    yield conn
    await conn.close()


# A page of results is taken from the newest CANDIDATES matches: reading a few rows for each
# kept is fine, reading every match of a common word, or the table, is not.
BUDGET = 20 * queries.CANDIDATES


def _scans(explained: str, relation: str) -> list[dict]:
    plan = json.loads(explained)[0]["Plan"]
    return [node for node in _nodes(plan) if node.get("Relation Name") == relation]


def _indexes(explained: str) -> set[str]:
    plan = json.loads(explained)[0]["Plan"]
    return {node["Index Name"] for node in _nodes(plan) if "Index Name" in node}


def _rows_read(node: dict) -> int:
    return (
        node["Actual Rows"] * node.get("Actual Loops", 1)
        + node.get("Rows Removed by Filter", 0)
        + node.get("Rows Removed by Index Recheck", 0)
    )


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(item) for item in value) + "]::text[]"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


async def _explain_search_posts(conn, viewer, words, author, tags) -> str:
    """EXPLAIN ANALYZE of the statement search_posts() runs for these values, planned as it
    plans it: for the values themselves."""
    sql = await conn.fetchval(
        "SELECT search_posts_statement($1, $2, $3)",
        words is not None,
        author is not None,
        tags is not None,
    )
    await conn.execute(f"PREPARE found (bigint, text, text, text[], integer) AS {sql}")
    try:
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        values = ", ".join(map(_literal, (viewer, words, author, tags, queries.CANDIDATES)))
        return await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE found ({values})")
    finally:
        await conn.execute("DEALLOCATE found")


POST_CASES = {
    "a rare word": ((None, "zeppelin", None, None), "posts_search_vector_idx"),
    "a rare phrase": ((None, '"over the harbour"', None, None), "posts_search_vector_idx"),
    "a common word": ((None, "coffee", None, None), None),
    "a common word, for a reader who blocks": ((1, "coffee", None, None), None),
    "two common words or-ed": ((None, "rain or bread", None, None), None),
    "a word, without another": ((None, "coffee -rain", None, None), None),
    "a rare tag": ((None, None, None, ["rare"]), "post_tags_pkey"),
    "a common tag and a word": ((None, "music", None, ["topic"]), None),
    "from: an author, a word": ((None, "coffee", "ada8", None), "posts_author_id_id_idx"),
}


@pytest.mark.parametrize("name", POST_CASES)
async def test_a_post_search_reads_its_indexes_and_no_more_than_it_needs(seeded, name):
    args, index = POST_CASES[name]
    explained = await _explain_search_posts(seeded, *args)
    scans = _scans(explained, "posts")
    assert scans, explained
    problems = [
        f"{node['Node Type']} reading {_rows_read(node)} rows"
        for node in scans
        if node["Node Type"] == "Seq Scan" or _rows_read(node) > BUDGET
    ]
    assert problems == [], f"{name}:\n{explained}"
    if index is not None:
        assert index in _indexes(explained), f"{name}:\n{explained}"


PEOPLE_CASES = {
    "a prefix": "gra",
    "a whole username": "grace6",
    "a display name's word": "tanaka",
    "a typo": "grase",
    "one letter": "h",
}


@pytest.mark.parametrize("name", PEOPLE_CASES)
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_a_people_search_reads_the_trigram_index(seeded, name, plan_mode):
    await seeded.execute(f"SET plan_cache_mode = {plan_mode}")
    async with seeded.transaction():
        statement = await seeded.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {queries.PEOPLE}")
        explained = await statement.fetchval(None, PEOPLE_CASES[name], queries.PEOPLE_LIMIT)
    assert "users_name_trigrams_idx" in _indexes(explained), explained
    assert all(node["Node Type"] != "Seq Scan" for node in _scans(explained, "users")), explained


async def test_the_seeded_searches_find_what_the_plans_are_for(seeded):
    """The plans above are of searches that really find something."""
    from microblog.search.parse import parse

    assert len(await queries.posts(seeded, parse("coffee"), None, 0, 20)) == 20
    assert len(await queries.posts(seeded, parse("zeppelin"), None, 0, 20)) == POSTS // 5000
    assert len(await queries.posts(seeded, parse("#rare"), None, 0, 50)) == POSTS // 4000
    found = await queries.people(seeded, "grace6", None)
    assert found[0].username == "grace6"
    assert any(u.username.startswith("grace") for u in await queries.people(seeded, "grase", None))
