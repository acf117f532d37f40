"""SQL for follows. Follower and following counts on users change in the same transaction."""

from __future__ import annotations

import asyncpg

from microblog.db.keyset import below
from microblog.db.transactions import Change, changed
from microblog.users.queries import User, columns_of

# Subjects are the followers: whose view of others changed.
FOLLOWS = Change("follows", "a follow or an unfollow that changed something")


async def _lock_pair(conn: asyncpg.Connection, a: int, b: int) -> None:
    # Both rows, in id order: two users following each other at once cannot deadlock.
    await conn.execute("SELECT 1 FROM users WHERE id IN ($1, $2) ORDER BY id FOR UPDATE", a, b)


async def follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool:
    """True if this call created the follow; False if it already existed."""
    await _lock_pair(conn, follower_id, followee_id)
    added = await conn.fetchval(
        """
        INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)
        ON CONFLICT DO NOTHING RETURNING true
        """,
        follower_id,
        followee_id,
    )
    if added:
        await _count(conn, follower_id, followee_id, +1)
        changed(conn, FOLLOWS, follower_id)
    return bool(added)


async def unfollow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool:
    """True if this call removed the follow; False if there was none."""
    await _lock_pair(conn, follower_id, followee_id)
    removed = await conn.fetchval(
        "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING true",
        follower_id,
        followee_id,
    )
    if removed:
        await _count(conn, follower_id, followee_id, -1)
        changed(conn, FOLLOWS, follower_id)
    return bool(removed)


async def _count(conn: asyncpg.Connection, follower_id: int, followee_id: int, delta: int) -> None:
    await conn.execute(
        """
        UPDATE users SET
            following_count = following_count + CASE WHEN id = $1 THEN $3 ELSE 0 END,
            follower_count = follower_count + CASE WHEN id = $2 THEN $3 ELSE 0 END
        WHERE id IN ($1, $2)
        """,
        follower_id,
        followee_id,
        delta,
    )


async def is_following(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM follows WHERE follower_id = $1 AND followee_id = $2",
        follower_id,
        followee_id,
    )
    return bool(found)


async def followee_ids(conn: asyncpg.Connection, follower_id: int) -> set[int]:
    """Everyone the user follows."""
    rows = await conn.fetch("SELECT followee_id FROM follows WHERE follower_id = $1", follower_id)
    return {row[0] for row in rows}


async def _people(
    conn: asyncpg.Connection, sql: str, user_id: int, before: int | None, limit: int
) -> list[tuple[int, User]]:
    rows = await conn.fetch(sql, user_id, below(before), limit)
    result = []
    for row in rows:
        fields = dict(row)
        follow_id = fields.pop("follow_id")
        result.append((follow_id, User(**fields)))
    return result


_USER_COLUMNS = columns_of("u")


async def followers(
    conn: asyncpg.Connection, user_id: int, before: int | None, limit: int
) -> list[tuple[int, User]]:
    """(follow id, follower), most recent follow first, follow ids below `before`."""
    return await _people(
        conn,
        f"""
        SELECT f.id AS follow_id, {_USER_COLUMNS}
        FROM follows f JOIN users u ON u.id = f.follower_id
        WHERE f.followee_id = $1 AND f.id < $2
        ORDER BY f.id DESC LIMIT $3
        """,
        user_id,
        before,
        limit,
    )


async def following(
    conn: asyncpg.Connection, user_id: int, before: int | None, limit: int
) -> list[tuple[int, User]]:
    """(follow id, followed user), most recent follow first, follow ids below `before`."""
    return await _people(
        conn,
        f"""
        SELECT f.id AS follow_id, {_USER_COLUMNS}
        FROM follows f JOIN users u ON u.id = f.followee_id
        WHERE f.follower_id = $1 AND f.id < $2
        ORDER BY f.id DESC LIMIT $3
        """,
        user_id,
        before,
        limit,
    )
