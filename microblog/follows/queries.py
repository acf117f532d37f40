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


async def follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool | None:
    """True if this call created the follow; False if it already existed; None when one of
    the two has blocked the other (microblog/blocks/). A block takes the same locks first, so
    the two cannot pass each other."""
    await _lock_pair(conn, follower_id, followee_id)
    added = await conn.fetchval(
        """
        INSERT INTO follows (follower_id, followee_id) SELECT $1, $2 WHERE may_see($1, $2)
        ON CONFLICT DO NOTHING RETURNING true
        """,
        follower_id,
        followee_id,
    )
    if added:
        await _count(conn, follower_id, followee_id, +1)
        changed(conn, FOLLOWS, follower_id)
        return True
    return None if not await may_see(conn, follower_id, followee_id) else False


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


async def may_see(conn: asyncpg.Connection, viewer_id: int | None, user_id: int) -> bool:
    """Whether neither has blocked the other (the database's rule, microblog/blocks/)."""
    return await conn.fetchval("SELECT may_see($1, $2)", viewer_id, user_id)


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


async def people(conn: asyncpg.Connection, sql: str, *args: object) -> list[tuple[int, User]]:
    """(id the list is paged by, person) for each row of `sql`, which selects `list_id`,
    then the person's columns (as `person_columns`)."""
    result = []
    for row in await conn.fetch(sql, *args):
        fields = dict(row)
        list_id = fields.pop("list_id")
        result.append((list_id, User(**fields)))
    return result


person_columns = columns_of("u")


def _people_of(owner: str, person: str) -> str:
    """Follows whose `owner` column is $1, newest first below $2, with the `person` column's
    account; leaving out whoever the viewer ($4) has blocked or been blocked by."""
    return f"""
        SELECT f.id AS list_id, {person_columns}
        FROM follows f JOIN users u ON u.id = f.{person}
        WHERE f.{owner} = $1 AND f.id < $2 AND u.id NOT IN (SELECT * FROM blocked_with($4))
        ORDER BY f.id DESC LIMIT $3
    """


FOLLOWERS = _people_of("followee_id", "follower_id")
FOLLOWING = _people_of("follower_id", "followee_id")


async def followers(
    conn: asyncpg.Connection, user_id: int, viewer_id: int | None, before: int | None, limit: int
) -> list[tuple[int, User]]:
    """(follow id, follower), most recent follow first, follow ids below `before`."""
    return await people(conn, FOLLOWERS, user_id, below(before), limit, viewer_id)


async def following(
    conn: asyncpg.Connection, user_id: int, viewer_id: int | None, before: int | None, limit: int
) -> list[tuple[int, User]]:
    """(follow id, followed user), most recent follow first, follow ids below `before`."""
    return await people(conn, FOLLOWING, user_id, below(before), limit, viewer_id)
