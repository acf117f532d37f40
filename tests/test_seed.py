"""`microblog seed`: posts, reposts among them, follows, blocks and mutes, with every count
kept on a row equal to the rows it counts."""

from __future__ import annotations

from microblog.seed import SeedPlan, seed
from microblog.timelines import queries

PLAN = SeedPlan(users=200, posts=3000, follows=2000)

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


async def test_seed_makes_reposts_among_the_posts_and_blocks_and_mutes_with_counts_right(db):
    await seed(db, PLAN, progress=False)
    await seed(db, PLAN, progress=False)  # a second run adds to the first
    assert tuple(await db.fetchrow(WRONG_COUNTS)) == (0, 0)
    posts, reposts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM reposts)"
    )
    assert posts == 2 * PLAN.posts
    assert 0.9 * 2 * PLAN.reposts <= reposts <= 2 * PLAN.reposts  # less the few drawn twice
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
    assert (blocks, mutes) == (2 * PLAN.blocks, 2 * PLAN.mutes)
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
