"""SQL for feeds: the newest posts of an author, as an anonymous visitor sees them."""

from __future__ import annotations

import asyncpg

from microblog.posts.queries import VIEW_COLUMNS, PostView, post_views

FEED_SIZE = 20

# The author's own posts, replies included, newest first from (author_id, id); $1 is the
# viewer VIEW_COLUMNS asks about, always NULL: a feed has none.
AUTHORED = f"""
    SELECT {VIEW_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.author_id = $2 ORDER BY p.id DESC LIMIT $3
"""


async def authored(conn: asyncpg.Connection, author_id: int, limit: int) -> list[PostView]:
    return post_views(await conn.fetch(AUTHORED, None, author_id, limit))
