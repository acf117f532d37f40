"""`microblog seed`, and growing a seeded database: what it adds is what it says, and every count
kept on a row still matches the rows it counts."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from microblog.cli import build_parser
from microblog.cli.common import CommandError
from microblog.seed import SeedPlan, seed
from microblog.seed_growth import Growth, GrowthError, grow

PLAN = SeedPlan(users=60, posts=400, follows=300)
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


async def test_growing_a_seeded_database_adds_what_it_says_and_keeps_every_count(db):
    await seed(db, PLAN, progress=False)
    before = await _totals(db)

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
        "SELECT count(DISTINCT author_id) FROM posts WHERE id > $1", before["posts"]
    )
    assert 1 < authors <= PLAN.users


async def test_readers_follow_the_most_followed_accounts_first(db):
    await seed(db, PLAN, progress=False)
    most_followed = await db.fetch("SELECT id FROM users ORDER BY follower_count DESC, id LIMIT 10")

    await grow(db, Growth(readers=(10,)), progress=False)

    assert await db.fetch(READERS_FOLLOWS, "reader_10") == sorted(most_followed)


async def test_posts_written_after_growing_take_the_next_ids(db):
    await seed(db, PLAN, progress=False)
    await grow(db, Growth(posts=100), progress=False)
    newest = await db.fetchval("SELECT max(id) FROM posts")
    written = await db.fetchval(
        "INSERT INTO posts (author_id, body) VALUES (1, 'after') RETURNING id"
    )
    assert written == newest + 1


async def test_asking_for_a_reader_again_adds_nothing_and_keeps_its_follows(db):
    await seed(db, PLAN, progress=False)
    await grow(db, Growth(readers=(20,)), progress=False)
    followed = await db.fetch(READERS_FOLLOWS, "reader_20")

    again = await grow(db, Growth(readers=(20,)), progress=False)

    assert (again.follows, again.readers) == (0, {"reader_20": 20})
    assert await db.fetch(READERS_FOLLOWS, "reader_20") == followed


async def test_a_reader_following_more_accounts_than_there_are_is_refused_before_writing(db):
    await seed(db, SeedPlan(users=5, posts=10, follows=5), progress=False)
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

    assert "seeded 30 users, 100 posts and up to 60 follows" in run(
        "--users", "30", "--posts", "100", "--follows", "60", "--readers", "5"
    )
    told = run("--grow", "--posts", "250", "--readers", "5,20")
    assert "added 250 posts and 20 follows; reader_5 follows 5 accounts; " in told
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
