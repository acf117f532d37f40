"""timeline_entries (migration 0021) holds every post and repost, under the account that made
it, through every way the app writes them: the home timeline's walk by author reads nothing
else."""

from __future__ import annotations

import pytest

from microblog.account_deletion.queries import close_account, erase_account
from microblog.db.transactions import without_duties
from microblog.posts.queries import delete_post
from microblog.reposts.queries import unrepost
from tests.conftest import make_post, make_repost, make_user

pytestmark = pytest.mark.both_layouts

MIRRORED = """
    SELECT p.id, p.author_id, p.id AS post_id, p.author_id AS post_author_id FROM posts p
    UNION ALL
    SELECT r.id, r.user_id, r.post_id, r.post_author_id FROM reposts r
    ORDER BY 1
"""


async def _entries(db) -> list[tuple]:
    rows = await db.fetch(
        "SELECT id, author_id, post_id, post_author_id FROM timeline_entries ORDER BY id"
    )
    return [tuple(row) for row in rows]


async def _mirrored(db) -> list[tuple]:
    return [tuple(row) for row in await db.fetch(MIRRORED)]


async def test_entries_follow_posts_and_reposts_as_they_are_written_and_removed(db):
    alice, bob, carol = [await make_user(db, name) for name in ("alice", "bob", "carol")]
    first, second = await make_post(db, alice, "first"), await make_post(db, bob, "second")
    reply = await make_post(db, carol, "@alice a reply", in_reply_to=first)
    await make_repost(db, bob, first)
    await make_repost(db, carol, first)
    await make_repost(db, alice, second)
    await make_repost(db, alice, reply)
    assert len(await _entries(db)) == 7
    assert await _entries(db) == await _mirrored(db)

    async with without_duties(db):
        assert await unrepost(db, carol.id, first)
    assert await _entries(db) == await _mirrored(db)

    # A post's reposts go with it (their foreign key), and their entries with them.
    async with without_duties(db):
        await delete_post(db, first, alice.id)
    assert await _entries(db) == await _mirrored(db)
    assert first not in {post_id for _, _, post_id, _ in await _entries(db)}

    async with without_duties(db), db.transaction():
        assert await close_account(db, alice.id)
        assert await erase_account(db, alice.id)
    assert await _entries(db) == await _mirrored(db)
    assert alice.id not in {author for _, author, _, _ in await _entries(db)}
    assert len(await _entries(db)) == 2  # bob's post and carol's reply


async def test_entries_of_many_rows_written_at_once_are_kept_too(db):
    """As `microblog seed` writes: one statement for many posts, one for many reposts."""
    alice = await make_user(db, "alice")
    await db.execute(
        "INSERT INTO posts (author_id, body) SELECT $1, 'post ' || g FROM generate_series(1, 50) g",
        alice.id,
    )
    await db.execute(
        "INSERT INTO reposts (user_id, post_id, post_author_id) "
        "SELECT $1, id, author_id FROM posts WHERE id % 2 = 0",
        alice.id,
    )
    assert len(await _entries(db)) == 75
    assert await _entries(db) == await _mirrored(db)
    await db.execute("DELETE FROM reposts WHERE post_id % 4 = 0")
    await db.execute("DELETE FROM posts WHERE id % 3 = 0")
    assert await _entries(db) == await _mirrored(db)
    await db.execute("TRUNCATE reposts")
    assert await _entries(db) == await _mirrored(db)
    await db.execute("TRUNCATE posts CASCADE")
    assert await _entries(db) == []
