"""`seed`: a demo that looks alive, with the counts on its rows right, that every cache hears of,
and that says how to log in to it; and growing a seeded database: what it adds is what it says,
and every count kept on a row still matches the rows it counts."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import asyncpg
import pytest

from microblog.cli import build_parser
from microblog.cli.common import CommandError
from microblog.seed import DEMO_PASSWORD, SeedPlan, seed
from microblog.seed_growth import Growth, GrowthError, grow
from microblog.seed_pictures import PICTURED_PER
from microblog.timelines import queries
from tests.conftest import ROOT, post_ids

PLAN = SeedPlan(users=30, posts=400, follows=200, likes=500)


async def test_the_public_page_shows_the_demo_at_once_though_it_was_cached_empty(
    app, client, transactions, pools
):
    assert "No posts yet" in await (await client.get("/public")).get_data(as_text=True)
    demo = await seed(transactions, pools, PLAN, progress=False)
    page = await (await client.get("/public")).get_data(as_text=True)
    assert "No posts yet" not in page
    assert post_ids(page)[0] == demo.post_ids[-1]


async def test_the_counts_on_the_rows_are_those_of_the_rows(transactions, pools, db):
    await seed(transactions, pools, PLAN, progress=False)
    wrong = await db.fetchval(
        """
        SELECT count(*) FROM users u WHERE
            post_count <> (SELECT count(*) FROM posts WHERE author_id = u.id)
            OR follower_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)
            OR following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)
        """
    )
    assert wrong == 0
    wrong = await db.fetchval(
        """
        SELECT count(*) FROM posts p WHERE
            reply_count <> (SELECT count(*) FROM posts r WHERE r.in_reply_to = p.id)
            OR like_count <> (SELECT count(*) FROM likes WHERE post_id = p.id)
            OR repost_count <> (SELECT count(*) FROM reposts WHERE post_id = p.id)
        """
    )
    assert wrong == 0


async def test_the_demo_looks_alive(transactions, pools, db):
    demo = await seed(transactions, pools, PLAN, progress=False)
    assert (demo.likes, demo.follows) == (PLAN.likes, PLAN.follows)
    people = await db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE display_name <> '') AS named,
               count(*) FILTER (WHERE bio <> '') AS with_bios, count(*) AS everyone
        FROM users
        """
    )
    assert people["named"] == people["everyone"] == PLAN.users
    assert people["with_bios"] > PLAN.users / 2
    posts = await db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE in_reply_to IS NOT NULL) AS replies,
               count(*) FILTER (WHERE like_count > 0) AS liked,
               max(like_count) AS most_liked, count(*) AS everything
        FROM posts
        """
    )
    assert 0 < posts["replies"] < posts["everything"] / 4
    assert 0 < posts["liked"] < posts["everything"]
    assert posts["most_liked"] >= 5  # the popular accounts' posts stand out
    assert await db.fetchval("SELECT count(*) FROM likes l JOIN posts p ON p.id = l.post_id "
                             "WHERE p.author_id = l.user_id") == 0  # fmt: skip


async def test_some_posts_show_pictures_ready_to_serve_with_alt_text(
    transactions, pools, db, browser
):
    demo = await seed(transactions, pools, PLAN, progress=False)
    assert demo.pictured == PLAN.posts // PICTURED_PER
    pictured = await db.fetch(
        """
        SELECT p.id, p.picture_count, count(pp.id) AS pictures,
               bool_and(pp.state = 'ready' AND pp.alt <> '') AS ready
        FROM posts p JOIN post_pictures pp ON pp.post_id = p.id GROUP BY p.id
        """
    )
    assert len(pictured) == demo.pictured
    assert all(row["picture_count"] == row["pictures"] and row["ready"] for row in pictured)
    ids = [row["id"] for row in pictured]
    others = "SELECT count(*) FROM posts WHERE picture_count > 0 AND id <> ALL($1::bigint[])"
    assert not await db.fetchval(others, ids)
    page = await browser.text(f"/posts/{pictured[0]['id']}")
    [thumb] = re.findall(r'<img src="(/pictures/\d+/thumb)" alt="[^"]+"', page)[:1]
    served = await browser.get(thumb)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/webp"


async def test_seeding_again_adds_another_demo_beside_the_first(transactions, pools, db):
    first = await seed(transactions, pools, PLAN, progress=False)
    second = await seed(transactions, pools, PLAN, progress=False)
    assert not set(first.usernames) & set(second.usernames)
    assert second.post_ids[0] > first.post_ids[-1]  # after the first's posts and reposts
    assert await db.fetchval("SELECT count(*) FROM users") == 2 * PLAN.users
    assert await db.fetchval("SELECT count(*) FROM likes") == 2 * PLAN.likes


async def test_the_command_names_demo_accounts_one_can_log_in_as(database_url, tmp_path, browser):
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "microblog", "seed", "--users", "12", "--posts", "50",
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "MICROBLOG_DATA_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await command.communicate()
    assert command.returncode == 0, err.decode()
    said = out.decode()
    assert "seeded 12 users, 50 posts, 50 likes, 5 reposts, 132 follows, 0 blocks" in said
    named = re.search(r"such as (\w+), (\w+), (\w+), with the password '(.+)'", said)
    assert named, said
    assert named.group(4) == DEMO_PASSWORD
    for username in named.groups()[:3]:
        await browser.login(username, DEMO_PASSWORD)
        assert f"@{username}" in await browser.text("/")


BUSY = SeedPlan(users=200, posts=3000, follows=2000, likes=3000)
# Each count on a row against a count of the rows it stands for: no row may differ.
WRONG_COUNTS = """
    SELECT
        (SELECT count(*) FROM users u WHERE
            post_count <> (SELECT count(*) FROM posts WHERE author_id = u.id)
            OR follower_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)
            OR following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)),
        (SELECT count(*) FROM posts p WHERE
            reply_count <> (SELECT count(*) FROM posts WHERE in_reply_to = p.id)
            OR repost_count <> (SELECT count(*) FROM reposts WHERE post_id = p.id))
"""


async def test_seed_makes_reposts_among_the_posts_and_blocks_and_mutes_with_counts_right(
    transactions, pools, db
):
    await seed(transactions, pools, BUSY, progress=False)
    await seed(transactions, pools, BUSY, progress=False)  # a second run adds to the first
    assert tuple(await db.fetchrow(WRONG_COUNTS)) == (0, 0)
    posts, reposts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM reposts)"
    )
    assert posts == 2 * BUSY.posts
    assert 0.9 * 2 * BUSY.reposts <= reposts <= 2 * BUSY.reposts  # less the few drawn twice
    # Entries of both kinds share one sequence: no id is both, reposts come among the posts
    # (not all after them), and what is written next takes an id after every seeded one.
    assert await db.fetchval("SELECT count(*) FROM reposts r JOIN posts p ON p.id = r.id") == 0
    assert (
        await db.fetchval("SELECT count(*) FROM reposts WHERE id < (SELECT max(id) FROM posts) / 2")
        > reposts / 4
    )
    assert await db.fetchval(
        "SELECT nextval('posts_id_seq') > (SELECT max(id) FROM reposts)"
        " AND currval('posts_id_seq') > (SELECT max(id) FROM posts)"
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM reposts r JOIN posts p ON p.id = r.post_id"
            " WHERE r.post_author_id <> p.author_id OR r.id < p.id"
        )
        == 0
    )
    blocks, mutes = await db.fetchrow(
        "SELECT (SELECT count(*) FROM blocks), (SELECT count(*) FROM mutes)"
    )
    assert (blocks, mutes) == (2 * BUSY.blocks, 2 * BUSY.mutes)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM blocks b JOIN follows f ON (f.follower_id, f.followee_id)"
            " IN ((b.blocker_id, b.blocked_id), (b.blocked_id, b.blocker_id))"
        )
        == 0
    )  # a block and a follow never stand between the same two
    assert (
        await db.fetchval(
            "SELECT count(*) FROM mutes m LEFT JOIN follows f"
            " ON (f.follower_id, f.followee_id) = (m.muter_id, m.muted_id) WHERE f.id IS NULL"
        )
        == 0
    )  # mutes are of people their muter follows
    busiest = await db.fetchval("SELECT id FROM users ORDER BY following_count DESC LIMIT 1")
    home = await queries.home(db, busiest, None, 20)
    assert len(home) == 20
    assert any(entry.reposter_username for entry in home)


GROWN_PLAN = SeedPlan(users=60, posts=400, follows=300, likes=400)
# Whom a reader follows.
READERS_FOLLOWS = """
    SELECT followee_id FROM follows f JOIN users u ON u.id = f.follower_id
    WHERE u.username = $1 ORDER BY 1
"""


async def _totals(db: asyncpg.Connection) -> dict[str, int]:
    return dict(
        await db.fetchrow(
            """
            SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM posts) AS posts,
                   (SELECT count(*) FROM follows) AS follows,
                   (SELECT count(*) FROM post_tags) AS tags
            """
        )
    )


async def _miscounted(db: asyncpg.Connection) -> list[str]:
    """Rows whose kept counts differ from the rows they count."""
    users = await db.fetch(
        """
        SELECT username FROM users u
        WHERE post_count <> (SELECT count(*) FROM posts p WHERE p.author_id = u.id)
           OR follower_count <> (SELECT count(*) FROM follows f WHERE f.followee_id = u.id)
           OR following_count <> (SELECT count(*) FROM follows f WHERE f.follower_id = u.id)
        """
    )
    posts = await db.fetch(
        """
        SELECT id::text FROM posts p
        WHERE reply_count <> (SELECT count(*) FROM posts r WHERE r.in_reply_to = p.id)
        """
    )
    return [row[0] for row in [*users, *posts]]


async def test_growing_a_seeded_database_adds_what_it_says_and_keeps_every_count(
    transactions, pools, db
):
    await seed(transactions, pools, GROWN_PLAN, progress=False)
    before = await _totals(db)
    last_seeded = await db.fetchval("SELECT max(id) FROM posts")

    grown = await grow(db, Growth(posts=900, readers=(10, 50)), progress=False)

    after = await _totals(db)
    assert (grown.posts, after["posts"]) == (900, before["posts"] + 900)
    assert (grown.follows, after["follows"]) == (60, before["follows"] + 60)
    assert grown.readers == {"reader_10": 10, "reader_50": 50}
    assert after["users"] == before["users"] + 2
    assert after["tags"] > before["tags"], "grown posts carry hashtags as seeded ones do"
    assert await _miscounted(db) == []
    following = await db.fetch(
        "SELECT username, following_count FROM users WHERE username LIKE 'reader%' ORDER BY 1"
    )
    assert [tuple(row) for row in following] == [("reader_10", 10), ("reader_50", 50)]
    # The grown posts are written by the accounts already there, the busiest most of all.
    authors = await db.fetchval(
        "SELECT count(DISTINCT author_id) FROM posts WHERE id > $1", last_seeded
    )
    assert 1 < authors <= GROWN_PLAN.users


async def test_readers_follow_the_most_followed_accounts_first(transactions, pools, db):
    await seed(transactions, pools, GROWN_PLAN, progress=False)
    most_followed = await db.fetch("SELECT id FROM users ORDER BY follower_count DESC, id LIMIT 10")

    await grow(db, Growth(readers=(10,)), progress=False)

    assert await db.fetch(READERS_FOLLOWS, "reader_10") == sorted(most_followed)


async def test_posts_written_after_growing_take_the_next_ids(transactions, pools, db):
    await seed(transactions, pools, GROWN_PLAN, progress=False)
    await grow(db, Growth(posts=100), progress=False)
    # Posts and reposts share one sequence (migration 0011).
    newest = await db.fetchval(
        "SELECT greatest((SELECT max(id) FROM posts), (SELECT max(id) FROM reposts))"
    )
    written = await db.fetchval(
        "INSERT INTO posts (author_id, body) VALUES (1, 'after') RETURNING id"
    )
    assert written == newest + 1


async def test_asking_for_a_reader_again_adds_nothing_and_keeps_its_follows(
    transactions, pools, db
):
    await seed(transactions, pools, GROWN_PLAN, progress=False)
    await grow(db, Growth(readers=(20,)), progress=False)
    followed = await db.fetch(READERS_FOLLOWS, "reader_20")

    again = await grow(db, Growth(readers=(20,)), progress=False)

    assert (again.follows, again.readers) == (0, {"reader_20": 20})
    assert await db.fetch(READERS_FOLLOWS, "reader_20") == followed


async def test_a_reader_following_more_accounts_than_there_are_is_refused_before_writing(
    transactions, pools, db
):
    await seed(transactions, pools, SeedPlan(users=5, posts=10, follows=5, likes=5), progress=False)
    before = await _totals(db)

    with pytest.raises(GrowthError, match="needs at least 6 other accounts; the database has 5"):
        await grow(db, Growth(posts=50, readers=(6,)), progress=False)

    assert await _totals(db) == before


async def test_growing_an_empty_database_says_to_seed_first(db):
    with pytest.raises(GrowthError, match="seed some first"):
        await grow(db, Growth(posts=10), progress=False)


def test_the_seed_command_says_what_it_added(settings, capsys):
    def run(*words: str) -> str:
        args = build_parser().parse_args(["seed", *words])
        assert args.handler(settings, args) == 0
        return capsys.readouterr().out

    assert "seeded 30 users, 100 posts, 100 likes, 10 reposts, 60 follows" in run(
        "--users", "30", "--posts", "100", "--follows", "60", "--readers", "5"
    )
    told = run("--grow", "--posts", "250", "--readers", "5,20")
    assert "added 250 posts, 25 reposts and 20 follows; reader_5 follows 5 accounts; " in told
    assert "reader_20 follows 20 accounts" in told

    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchval("SELECT count(*) FROM posts")
        finally:
            await conn.close()

    assert asyncio.run(count()) == 350


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--grow", "--users", "3", "--posts", "5"], "--grow adds posts and readers"),
        (["--posts", "5"], "seed needs --users and --posts"),
        (["--grow"], "--grow needs --posts, --readers or both"),
    ],
)
def test_the_seed_command_refuses_what_it_cannot_do(settings, words, message):
    args = build_parser().parse_args(["seed", *words])
    with pytest.raises(CommandError, match=message):
        args.handler(settings, args)
