"""The hot queries read a page's worth of posts, however large the table or an author's history:
checked with EXPLAIN ANALYZE on 100,000 unevenly written posts and 10,000 reposts among them,
for a reader who has muted one of the people they follow and blocked a few others.

Both the custom plan (literal parameters) and the generic plan (what a prepared statement may
switch to after a few runs) are checked, since asyncpg prepares every statement.
"""

from __future__ import annotations

import json
import os

import asyncpg
import pytest

from microblog.db.keyset import BIGINT_MAX
from microblog.timelines import queries
from tests.conftest import seeded_database

USERS, POSTS, REPOSTS = 10_000, 100_000, 10_000
ROUNDS = 10  # posts and reposts are written in turns, so that their ids interleave
QUIET_READER = 9999  # follows 100 of the quietest authors
BUSY_READER = 9998  # follows the 300 busiest
FEW_READER = 9997  # follows 30, as many readers do


async def _seed(db: asyncpg.Connection) -> None:
    await db.execute(
        """
        INSERT INTO users (username, password_hash)
        SELECT 'user' || g, 'x' FROM generate_series(1, $1) g
        """,
        USERS,
    )

    async def write_posts(count: int) -> None:
        await db.execute(
            """
            INSERT INTO posts (author_id, body)
            SELECT 1 + floor($1 * power(random(), 4))::int, 'post number ' || g
            FROM generate_series(1, $2) g
            """,
            USERS,
            count,
        )

    # Posts on either side of each round's reposts, so that neither kind has the newest ids
    # to itself.
    for _ in range(ROUNDS):
        await write_posts(POSTS // ROUNDS // 2)
        # Reposters as uneven as authors (the people user 1 follows repost the most), of
        # posts old and new, some of them reposted by several of those people.
        await db.execute(
            """
            INSERT INTO reposts (user_id, post_id, post_author_id)
            SELECT DISTINCT ON (pick.user_id, p.id) pick.user_id, p.id, p.author_id
            FROM (
                SELECT 1 + floor($1 * power(random(), 4))::int AS user_id,
                       1 + floor(random() * (SELECT max(id) FROM posts))::int AS post_id
                FROM generate_series(1, $2)
            ) AS pick
            JOIN posts p ON p.id = pick.post_id
            ON CONFLICT DO NOTHING
            """,
            USERS,
            REPOSTS // ROUNDS,
        )
        await write_posts(POSTS // ROUNDS // 2)
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id) SELECT 1, g FROM generate_series(2, 51) g"
    )
    # A reader of quiet authors only: their page lies far below everyone's newest entries.
    await db.execute(
        f"INSERT INTO follows (follower_id, followee_id) "
        f"SELECT {QUIET_READER}, g FROM generate_series(9000, 9099) g "
        f"UNION ALL SELECT {BUSY_READER}, g FROM generate_series(1, 300) g "
        f"UNION ALL SELECT {FEW_READER}, g FROM generate_series(101, 130) g"
    )
    # Most people follow a few: a generic plan, guessing from that average, takes any reader
    # for one who follows a few, which a reader of hundreds is not.
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id) "
        "SELECT g, 1 FROM generate_series(1000, 4999) g"
    )
    await db.execute(
        "UPDATE users SET following_count = followed.n FROM "
        "(SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id) AS followed "
        "WHERE users.id = followed.follower_id"
    )
    await db.execute("INSERT INTO mutes (muter_id, muted_id) VALUES (1, 51)")
    await db.execute(
        "INSERT INTO blocks (blocker_id, blocked_id) SELECT 1, g FROM generate_series(60, 69) g"
    )
    await db.execute(
        """
        INSERT INTO post_tags (tag, post_id)
        SELECT 'topic', id FROM posts WHERE id % 10 = 0
        """
    )
    # As `microblog seed` does, and autovacuum would: statistics, and the visibility map that
    # lets the timelines' index-only scans skip the table.
    await db.execute("VACUUM (ANALYZE)")


@pytest.fixture(scope="module")
def seeded_url(server_url, template_database):
    """One database for the module: 10,000 users, 100,000 posts, user 1 following 50 others.

    Authors are as uneven as on a real site: user 1 writes about a sixth of all posts and most
    write a handful: a planner that assumes the average (ten) for every author goes wrong.
    """
    yield from seeded_database(
        server_url, template_database, f"timeline_plans_{os.getpid()}", _seed
    )


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


def _scans_of_entries(explained: str) -> list[dict]:
    plan = json.loads(explained)[0]["Plan"]
    return [
        node
        for node in _nodes(plan)
        if node.get("Relation Name") in {"posts", "reposts", "timeline_entries"}
    ]


def _too_much_work(explained: str, budget: int = BUDGET) -> list[str]:
    """Scans of posts or reposts that read the table, or far more rows per loop than a page
    needs: what makes a timeline's cost grow with the size of the table or of one author's
    history."""
    problems = []
    for node in _scans_of_entries(explained):
        read = (
            node["Actual Rows"]
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        if node["Node Type"] == "Seq Scan" or read > budget:
            problems.append(f"{node['Node Type']} of {node['Relation Name']} reading {read} rows")
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
    "public for a reader who blocks and mutes": (queries.PUBLIC, (1, BIGINT_MAX, PAGE)),
    "profile of someone who reposts": (queries.PROFILE, (1, 2, BIGINT_MAX, PAGE)),
    "tag for a reader who blocks and mutes": (queries.TAGGED, (1, "topic", POSTS // 2, PAGE)),
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


@pytest.mark.parametrize("before", [BIGINT_MAX, POSTS // 2], ids=["first page", "later page"])
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_home_timeline_reads_each_author_through_the_indexes(seeded, plan_mode, before):
    """home_timeline_by_author hides its plans from EXPLAIN: explain the candidates it reads (a SQL
    function, inlined where it is called), with its settings, for a page and for the larger
    reach it reads again with when it must."""
    settings = await seeded.fetchval(
        "SELECT proconfig FROM pg_proc WHERE proname = 'home_timeline_by_author'"
    )
    async with seeded.transaction():
        for setting in settings:
            name, value = setting.split("=", 1)
            await seeded.execute(f"SET LOCAL {name} = {value}")
        await seeded.execute(f"SET LOCAL plan_cache_mode = {plan_mode}")
        statement = await seeded.prepare(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM home_timeline_candidates($1, $2, $3)"
        )
        for reach in (PAGE, 4 * PAGE):
            explained = await statement.fetchval(1, before, reach)
            assert _too_much_work(explained, budget=20 * reach) == [], explained


async def _settings_of(conn: asyncpg.Connection, function: str, plan_mode: str) -> None:
    """SET LOCAL what `function` runs under, and the plan cache mode."""
    settings = await conn.fetchval("SELECT proconfig FROM pg_proc WHERE proname = $1", function)
    for setting in settings:
        name, value = setting.split("=", 1)
        await conn.execute(f"SET LOCAL {name} = {value}")
    await conn.execute(f"SET LOCAL plan_cache_mode = {plan_mode}")


@pytest.mark.parametrize("viewer", [1, BUSY_READER], ids=["following 50", "following 300"])
@pytest.mark.parametrize("before", [BIGINT_MAX, POSTS // 2], ids=["first page", "later page"])
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_home_timeline_of_the_newest_entries_reads_a_window_and_probes_follows(
    seeded, plan_mode, before, viewer
):
    """home_timeline_window, as home_timeline_recent runs it: the window's rows through the
    primary keys, and a probe of the follows key for each of those rows, however many people
    the reader follows."""
    scan = 4 * PAGE
    # Where home_timeline_recent's two windows both reach.
    lowest = await seeded.fetchval(
        """
        SELECT greatest(
            (SELECT min(id) FROM (SELECT id FROM posts WHERE id < $1 ORDER BY id DESC LIMIT $2) w),
            (SELECT min(id) FROM (SELECT id FROM reposts WHERE id < $1 ORDER BY id DESC LIMIT $2) w)
        )
        """,
        before,
        scan,
    )
    async with seeded.transaction():
        await _settings_of(seeded, "home_timeline_recent", plan_mode)
        statement = await seeded.prepare(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM home_timeline_window($1, $2, $3, $4)"
        )
        explained = await statement.fetchval(viewer, before, lowest, PAGE)
    assert _too_much_work(explained, budget=2 * scan) == [], explained
    plan = json.loads(explained)[0]["Plan"]
    follows = [node for node in _nodes(plan) if node.get("Relation Name") == "follows"]
    assert follows, explained
    for node in follows:
        assert "followee_id" in node.get("Index Cond", ""), f"not a probe:\n{explained}"


async def _pages(conn: asyncpg.Connection, function: str, viewer: int, count: int) -> list:
    pages, before = [], BIGINT_MAX
    for _ in range(count):
        rows = await conn.fetch(f"SELECT * FROM {function}($1, $2, $3)", viewer, before, PAGE)
        pages.append([tuple(row) for row in rows])
        if not rows:
            break
        before = rows[-1]["entry_id"]
    return pages


@pytest.mark.parametrize(
    "viewer", [1, BUSY_READER, QUIET_READER], ids=["user 1", "busy follows", "quiet follows"]
)
async def test_the_newest_entries_and_the_walk_by_author_make_the_same_pages(seeded, viewer):
    assert await _pages(seeded, "home_timeline", viewer, 6) == await _pages(
        seeded, "home_timeline_by_author", viewer, 6
    )


async def test_the_newest_entries_serve_a_reader_of_busy_people_and_not_of_quiet_ones(seeded):
    """So that the test above compares both walks: the busy reader's pages come from the
    newest entries; the quiet reader's, beyond the widest window worth reading, from each
    author."""
    recent = "SELECT complete FROM home_timeline_recent($1, $2, $3, $4)"
    assert await seeded.fetchval(recent, BUSY_READER, BIGINT_MAX, PAGE, 4 * PAGE)
    widest = 2 * (100 + 1)
    assert not await seeded.fetchval(recent, QUIET_READER, BIGINT_MAX, PAGE, widest)


async def _walks_run(db: asyncpg.Connection, viewer: int) -> dict[str, int]:
    """How often a home page of `viewer` ran each walk, as PostgreSQL counts function calls."""
    async with db.transaction():
        await db.execute("SET LOCAL track_functions = 'pl'")
        await db.fetch("SELECT * FROM home_timeline($1, $2, $3)", viewer, BIGINT_MAX, PAGE)
        rows = await db.fetch(
            "SELECT funcname, calls FROM pg_stat_xact_user_functions "
            "WHERE funcname IN ('home_timeline_recent', 'home_timeline_by_author')"
        )
    return {row["funcname"]: row["calls"] for row in rows}


async def test_a_reader_of_a_few_people_is_read_author_by_author_at_once(seeded):
    """A window would cost them what reading some seventeen authors does, and seldom hold
    their page (migration 0020)."""
    assert await _walks_run(seeded, FEW_READER) == {"home_timeline_by_author": 1}


async def test_a_reader_of_many_people_is_read_from_the_newest_entries(seeded):
    assert await _walks_run(seeded, BUSY_READER) == {"home_timeline_recent": 1}


async def test_the_seeded_timelines_return_full_pages(seeded):
    """The plans above are for queries that really return data, reposts among it."""
    home = await queries.home(seeded, 1, None, 20)
    assert len(home) == 20
    # Reposts come in blocks (see _seed): the page just below the newest one has them.
    newest_repost = await seeded.fetchval("SELECT max(id) FROM reposts")
    reposted = await queries.home(seeded, 1, newest_repost + 1, 20)
    assert any(entry.reposter_username for entry in reposted)
    assert len(await queries.profile(seeded, 2, 1, None, 20)) == 20
    assert len(await queries.public(seeded, None, None, 20)) == 20
    assert len(await queries.profile(seeded, 1, None, None, 20)) == 20
    assert len(await queries.tagged(seeded, "topic", None, None, 20)) == 20
