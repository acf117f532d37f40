"""SQL for reposts. The count on the post's row changes in the caller's transaction."""

from __future__ import annotations

import asyncpg

from microblog.db.transactions import Change, changed

REPOSTS = Change("reposts", "a repost or an unrepost that changed something")


async def repost(conn: asyncpg.Connection, user_id: int, post_id: int) -> bool:
    """True if this call added the repost; False if it was there already, or the post is not.

    The insert's foreign key locks the post's row, so it cannot be deleted meanwhile."""
    added = await conn.fetchval(
        """
        INSERT INTO reposts (user_id, post_id, post_author_id)
        SELECT $1, p.id, p.author_id FROM posts p WHERE p.id = $2
        ON CONFLICT DO NOTHING RETURNING true
        """,
        user_id,
        post_id,
    )
    if added:
        await _count(conn, post_id, +1)
    return bool(added)


async def unrepost(conn: asyncpg.Connection, user_id: int, post_id: int) -> bool:
    """True if this call removed the repost; False if there was none."""
    removed = await conn.fetchval(
        "DELETE FROM reposts WHERE user_id = $1 AND post_id = $2 RETURNING true", user_id, post_id
    )
    if removed:
        await _count(conn, post_id, -1)
    return bool(removed)


async def _count(conn: asyncpg.Connection, post_id: int, delta: int) -> None:
    await conn.execute(
        "UPDATE posts SET repost_count = repost_count + $2 WHERE id = $1", post_id, delta
    )
    changed(conn, REPOSTS, post_id)


async def has_reposted(conn: asyncpg.Connection, user_id: int, post_id: int) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM reposts WHERE user_id = $1 AND post_id = $2", user_id, post_id
    )
    return bool(found)
