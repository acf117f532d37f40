"""SQL for the timelines. Each walks an index newest-first and stops after `limit` rows.

The statements are module constants so the EXPLAIN tests check exactly what runs."""

from __future__ import annotations

import asyncpg

from microblog.db.keyset import below
from microblog.posts.queries import VIEW_COLUMNS, PostView, post_views

# The user's own posts and those of everyone they follow: home_timeline_ids (migrations 0005 and
# 0007) picks the page's ids from the (author_id, id) index; only those posts are read and joined.
HOME = f"""
    SELECT {VIEW_COLUMNS}
    FROM home_timeline_ids($1, $2, $3) AS page (id)
    JOIN posts p ON p.id = page.id JOIN users u ON u.id = p.author_id
    ORDER BY p.id DESC
"""

PUBLIC = f"""
    SELECT {VIEW_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.id < $2 ORDER BY p.id DESC LIMIT $3
"""

PROFILE = f"""
    SELECT {VIEW_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.author_id = $2 AND p.id < $3 ORDER BY p.id DESC LIMIT $4
"""

TAGGED = f"""
    SELECT {VIEW_COLUMNS}
    FROM post_tags t JOIN posts p ON p.id = t.post_id JOIN users u ON u.id = p.author_id
    WHERE t.tag = $2 AND t.post_id < $3 ORDER BY t.post_id DESC LIMIT $4
"""


async def home(
    conn: asyncpg.Connection, user_id: int, before: int | None, limit: int
) -> list[PostView]:
    return post_views(await conn.fetch(HOME, user_id, below(before), limit))


async def public(
    conn: asyncpg.Connection, viewer_id: int | None, before: int | None, limit: int
) -> list[PostView]:
    return post_views(await conn.fetch(PUBLIC, viewer_id, below(before), limit))


async def profile(
    conn: asyncpg.Connection, author_id: int, viewer_id: int | None, before: int | None, limit: int
) -> list[PostView]:
    return post_views(await conn.fetch(PROFILE, viewer_id, author_id, below(before), limit))


async def tagged(
    conn: asyncpg.Connection, tag: str, viewer_id: int | None, before: int | None, limit: int
) -> list[PostView]:
    return post_views(await conn.fetch(TAGGED, viewer_id, tag, below(before), limit))
