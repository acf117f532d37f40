"""SQL for the timelines. Each walks an index newest-first and stops after `limit` rows.

A timeline is made of entries: posts, and in home and profile timelines reposts, each named by
its id (posts and reposts share one sequence, migration 0011), which is what `before` pages by.
Every timeline leaves out the posts the viewer ($1) is not to see (microblog/blocks/).

The statements are module constants so the EXPLAIN tests check exactly what runs."""

from __future__ import annotations

import asyncpg

from microblog.db.keyset import below
from microblog.posts.queries import SHOWN, VIEW_COLUMNS, PostView, post_views


def _reposter(column: str) -> str:
    # Behind a CASE, which PostgreSQL evaluates lazily: the lookup runs for the page's reposts
    # only, where a join would probe reposts for every row.
    return f"""CASE WHEN page.entry_id <> page.post_id THEN (
        SELECT reposter.{column} FROM reposts r JOIN users reposter ON reposter.id = r.user_id
        WHERE r.id = page.entry_id
    ) END"""


# What a timeline's rows add to a post's columns: the entry's id and, for a repost, who made
# it (NULL for a post). PostView takes them after its own.
ENTRY_COLUMNS = f"page.entry_id, {_reposter('username')}, {_reposter('display_name')}"

# The reader's own posts and reposts and those of everyone they follow and have not muted, a
# post once, at its newest entry: home_timeline picks the page's entries from the newest
# entries of everyone (migration 0019) or, for a reader of few or quiet people, from each
# author's entries in timeline_entries (migration 0021); either way only the page's posts are
# read and joined.
HOME = f"""
    SELECT {VIEW_COLUMNS}, {ENTRY_COLUMNS}
    FROM home_timeline($1, $2, $3) AS page
    JOIN posts p ON p.id = page.post_id JOIN users u ON u.id = p.author_id
    ORDER BY page.entry_id DESC
"""

PUBLIC = f"""
    SELECT {VIEW_COLUMNS}, p.id, NULL, NULL FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.id < $2 AND {SHOWN} ORDER BY p.id DESC LIMIT $3
"""

# The author's posts and reposts, newest first; a post they reposted themselves shows once, as
# the repost (a scalar subquery, as in VIEW_COLUMNS, so as not to read all their reposts). The
# author's own posts show to anyone who may see the author at all (a muted author's profile
# too: the reader went to look); the posts they reposted, as timelines show them.
PROFILE = f"""
    SELECT {VIEW_COLUMNS}, {ENTRY_COLUMNS}
    FROM (
        (SELECT p.id AS entry_id, p.id AS post_id FROM posts p
         WHERE p.author_id = $2 AND p.id < $3
           AND (SELECT true FROM reposts r WHERE r.user_id = $2 AND r.post_id = p.id) IS NULL
         ORDER BY p.id DESC LIMIT $4)
        UNION ALL
        (SELECT r.id, r.post_id FROM reposts r
         WHERE r.user_id = $2 AND r.id < $3
           AND r.post_author_id NOT IN (SELECT * FROM hidden_from($1))
         ORDER BY r.id DESC LIMIT $4)
        ORDER BY entry_id DESC LIMIT $4
    ) AS page
    JOIN posts p ON p.id = page.post_id JOIN users u ON u.id = p.author_id
    ORDER BY page.entry_id DESC
"""

# The cursor bounds posts too: PostgreSQL does not carry it over the join by itself, and a
# merge join would then walk posts from the newest down to the cursor.
TAGGED = f"""
    SELECT {VIEW_COLUMNS}, p.id, NULL, NULL
    FROM post_tags t JOIN posts p ON p.id = t.post_id JOIN users u ON u.id = p.author_id
    WHERE t.tag = $2 AND t.post_id < $3 AND p.id < $3 AND {SHOWN}
    ORDER BY t.post_id DESC LIMIT $4
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
