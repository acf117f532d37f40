"""SQL for deleting an account: closing it at once, and erasing it in one transaction."""

from __future__ import annotations

import asyncpg

from microblog.db.transactions import Change, changed
from microblog.follows.queries import FOLLOWS
from microblog.notifications.queries import UNREAD
from microblog.posts.queries import LIKES, POSTS, REPLIES
from microblog.reposts.queries import REPOSTS
from microblog.users.queries import PROFILES


async def close_account(conn: asyncpg.Connection, user_id: int) -> bool:
    """Make the account unusable now: no log-in, no profile, every session ended (on every
    instance: the sessions' rows go, and a cookie is honoured only with its row). False when
    it was closed already."""
    closed = await conn.fetchval(
        """
        UPDATE users SET deleted_at = now(), session_epoch = session_epoch + 1
        WHERE id = $1 AND deleted_at IS NULL RETURNING true
        """,
        user_id,
    )
    await conn.execute("DELETE FROM user_sessions WHERE user_id = $1", user_id)
    changed(conn, PROFILES, user_id)
    return bool(closed)


async def erase_account(conn: asyncpg.Connection, user_id: int) -> bool:
    """Delete a closed account's rows, and the row itself, keeping the counts on everyone
    else's right: likes, replies and reposts on their posts, their followers and following,
    their unread notifications. False when there is no such closed account (erased already).

    Everything that is only the account's (its posts and their likes, tags, mentions,
    pictures; its sessions, avatar, blocks and mutes) goes with the row, by ON DELETE CASCADE.
    """
    if not await conn.fetchval(
        "SELECT true FROM users WHERE id = $1 AND deleted_at IS NOT NULL FOR UPDATE", user_id
    ):
        return False
    await _uncount_unread(conn, user_id)
    liked = await conn.fetch(
        """
        WITH gone AS (DELETE FROM likes WHERE user_id = $1 RETURNING post_id)
        UPDATE posts SET like_count = like_count - 1 FROM gone
        WHERE posts.id = gone.post_id AND posts.author_id <> $1 RETURNING posts.id
        """,
        user_id,
    )
    reposted = await conn.fetch(
        """
        WITH gone AS (DELETE FROM reposts WHERE user_id = $1 RETURNING post_id)
        UPDATE posts SET repost_count = repost_count - 1 FROM gone
        WHERE posts.id = gone.post_id AND posts.author_id <> $1 RETURNING posts.id
        """,
        user_id,
    )
    replied_to = await conn.fetch(
        """
        UPDATE posts SET reply_count = reply_count - mine.replies
        FROM (
            SELECT in_reply_to, count(*) AS replies FROM posts
            WHERE author_id = $1 AND in_reply_to IS NOT NULL GROUP BY in_reply_to
        ) AS mine
        WHERE posts.id = mine.in_reply_to AND posts.author_id <> $1 RETURNING posts.id
        """,
        user_id,
    )
    await _unfollow_everyone(conn, user_id)
    posts = await conn.fetch("SELECT id FROM posts WHERE author_id = $1", user_id)
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    for change, rows in (
        (LIKES, liked),
        (REPOSTS, reposted),
        (REPLIES, replied_to),
        (POSTS, posts),
    ):
        _changed(conn, change, rows)
    return True


def _changed(conn: asyncpg.Connection, change: Change, rows: list[asyncpg.Record]) -> None:
    for row in rows:
        changed(conn, change, row["id"])


async def _uncount_unread(conn: asyncpg.Connection, user_id: int) -> None:
    """Unread notifications of others that go with the account (those it caused, those about
    its posts) stop counting as unread."""
    recounted = await conn.fetch(
        """
        UPDATE users SET unread_notifications = greatest(unread_notifications - gone.unread, 0)
        FROM (
            SELECT recipient_id, count(*) AS unread FROM notifications
            WHERE read_at IS NULL AND recipient_id <> $1
              AND (actor_id = $1 OR post_id IN (SELECT id FROM posts WHERE author_id = $1))
            GROUP BY recipient_id
        ) AS gone
        WHERE users.id = gone.recipient_id
        RETURNING users.id
        """,
        user_id,
    )
    _changed(conn, UNREAD, recounted)


async def _unfollow_everyone(conn: asyncpg.Connection, user_id: int) -> None:
    await conn.execute(
        """
        WITH gone AS (DELETE FROM follows WHERE follower_id = $1 RETURNING followee_id)
        UPDATE users SET follower_count = follower_count - 1 FROM gone
        WHERE users.id = gone.followee_id
        """,
        user_id,
    )
    following = await conn.fetch(
        """
        WITH gone AS (DELETE FROM follows WHERE followee_id = $1 RETURNING follower_id)
        UPDATE users SET following_count = following_count - 1 FROM gone
        WHERE users.id = gone.follower_id RETURNING users.id
        """,
        user_id,
    )
    # A follow's change is known by its follower (follows/queries.py).
    changed(conn, FOLLOWS, user_id)
    _changed(conn, FOLLOWS, following)
