"""SQL for posts, likes and hashtags. Counts on the rows change in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from microblog.db.transactions import Change, changed
from microblog.notifications.queries import forget_post

POSTS = Change("posts", "a post written (replies included) or deleted")
LIKES = Change("likes", "a like or an unlike that changed something")
REPLIES = Change("replies", "a reply written or deleted, changing its parent's count of replies")


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building a page's twenty PostViews cost more than the rest of reading their rows.
@dataclass(slots=True)
class PostView:
    """A post as pages show it: with its author and whether the viewer has liked or reposted
    it; in a timeline, also the entry it is shown as (a repost has its own id and reposter)."""

    id: int
    author_id: int
    author_username: str
    author_display_name: str
    author_avatar: str | None  # the picture's digest, if the author has one
    body: str
    in_reply_to: int | None
    reply_count: int
    like_count: int
    repost_count: int
    created_at: datetime
    liked: bool
    reposted: bool
    mentioned: list[str]  # the lower-cased names of the accounts it mentions, sorted
    # Its pictures in order, as (id, alt, state, thumb_width, thumb_height); None: it has none.
    pictures: list[tuple] | None
    # Timelines only (timelines/queries.py): the entry's id, the post's own or its repost's,
    # and who reposted it, for a repost.
    entry_id: int | None = None
    reposter_username: str | None = None
    reposter_display_name: str | None = None

    @property
    def author_name(self) -> str:
        return self.author_display_name or self.author_username

    @property
    def reposter_name(self) -> str | None:
        return self.reposter_display_name or self.reposter_username


# Every query that returns PostView selects these, with the viewer's id (or NULL) as $1.
# Whether the viewer liked or reposted a post is a scalar subquery, one probe of a unique index
# per post: PostgreSQL may plan an EXISTS as a hash of every like or repost the viewer made.
# The probe runs only for a post that has likes or reposts at all: the counts change in the
# transaction that likes or reposts (above), so no snapshot sees one without the other.
VIEW_COLUMNS = """
    p.id, p.author_id, u.username AS author_username, u.display_name AS author_display_name,
    u.avatar_digest AS author_avatar, p.body, p.in_reply_to, p.reply_count, p.like_count,
    p.repost_count, p.created_at,
    CASE WHEN p.like_count > 0 THEN
        (SELECT true FROM likes l WHERE l.user_id = $1 AND l.post_id = p.id) IS NOT NULL
    ELSE false END AS liked,
    CASE WHEN p.repost_count > 0 THEN
        (SELECT true FROM reposts r WHERE r.user_id = $1 AND r.post_id = p.id) IS NOT NULL
    ELSE false END AS reposted,
    ARRAY(SELECT m.name FROM post_mentions m WHERE m.post_id = p.id ORDER BY m.name) AS mentioned,
    CASE WHEN p.picture_count > 0 THEN ARRAY(
        SELECT ROW(pp.id, pp.alt, pp.state, pp.thumb_width, pp.thumb_height)
        FROM post_pictures pp WHERE pp.post_id = p.id ORDER BY pp.position
    ) END AS pictures
"""
# Threads leave out the posts of accounts the viewer ($1) has blocked, been blocked by or muted.
SHOWN = "p.author_id NOT IN (SELECT * FROM hidden_from($1))"


def post_views(rows: list[asyncpg.Record]) -> list[PostView]:
    # VIEW_COLUMNS are PostView's fields in order, so rows fill it by position: a third of the
    # cost of going by name, for every post on every page.
    return [PostView(*row) for row in rows]


async def create_post(
    conn: asyncpg.Connection,
    author_id: int,
    body: str,
    tags: set[str],
    mentioned: set[str],
    in_reply_to: int | None = None,
    picture_count: int = 0,
) -> int | None:
    """The new post's id, or None when the post it replies to does not exist.

    A post of `picture_count` pictures (the caller adds them: post_pictures/queries.py) may
    have an empty body.

    `mentioned` are the lower-cased names the body mentions; those that belong to an account
    are recorded as the post's mentions."""
    if in_reply_to is not None:
        # Counting the reply first also locks the parent, so it cannot vanish before the insert.
        parent = await conn.fetchval(
            "UPDATE posts SET reply_count = reply_count + 1 WHERE id = $1 RETURNING id",
            in_reply_to,
        )
        if parent is None:
            return None
        changed(conn, REPLIES, in_reply_to)
    post_id = await conn.fetchval(
        """
        INSERT INTO posts (author_id, body, in_reply_to, picture_count) VALUES ($1, $2, $3, $4)
        RETURNING id
        """,
        author_id,
        body,
        in_reply_to,
        picture_count,
    )
    if tags:
        await conn.execute(
            "INSERT INTO post_tags (tag, post_id) SELECT unnest($1::text[]), $2",
            sorted(tags),
            post_id,
        )
    if mentioned:
        await conn.execute(
            """
            INSERT INTO post_mentions (post_id, user_id, name)
            SELECT $1, id, lower(username) FROM users WHERE lower(username) = ANY($2::text[])
            """,
            post_id,
            sorted(mentioned),
        )
    await conn.execute("UPDATE users SET post_count = post_count + 1 WHERE id = $1", author_id)
    changed(conn, POSTS, post_id)
    return post_id


@dataclass(frozen=True)
class PostFacts:
    """What notifications need to know about a post."""

    author_id: int
    parent_author_id: int | None
    mentioned_ids: list[int]


async def post_facts(conn: asyncpg.Connection, post_id: int) -> PostFacts | None:
    row = await conn.fetchrow(
        """
        SELECT p.author_id, parent.author_id AS parent_author_id,
               ARRAY(SELECT user_id FROM post_mentions WHERE post_id = p.id) AS mentioned_ids
        FROM posts p LEFT JOIN posts parent ON parent.id = p.in_reply_to
        WHERE p.id = $1
        """,
        post_id,
    )
    return PostFacts(**dict(row)) if row else None


async def has_liked(conn: asyncpg.Connection, user_id: int, post_id: int) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM likes WHERE user_id = $1 AND post_id = $2", user_id, post_id
    )
    return bool(found)


async def post_author(conn: asyncpg.Connection, post_id: int) -> int | None:
    return await conn.fetchval("SELECT author_id FROM posts WHERE id = $1", post_id)


async def delete_post(conn: asyncpg.Connection, post_id: int, author_id: int) -> int | None:
    """Delete the author's own post; replies stay, detached from it, and its notifications
    go. The id of the post it replied to, if it was a reply."""
    own = await conn.fetchval(
        "SELECT true FROM posts WHERE id = $1 AND author_id = $2 FOR UPDATE", post_id, author_id
    )
    if not own:
        return None
    await forget_post(conn, post_id)
    deleted = await conn.fetchrow(
        "DELETE FROM posts WHERE id = $1 AND author_id = $2 RETURNING in_reply_to",
        post_id,
        author_id,
    )
    if deleted is None:
        return None
    parent_id = deleted["in_reply_to"]
    if parent_id is not None:
        await conn.execute(
            "UPDATE posts SET reply_count = reply_count - 1 WHERE id = $1", parent_id
        )
        changed(conn, REPLIES, parent_id)
    await conn.execute("UPDATE users SET post_count = post_count - 1 WHERE id = $1", author_id)
    changed(conn, POSTS, post_id)
    return parent_id


async def _lock_post(conn: asyncpg.Connection, post_id: int) -> bool:
    # Taken before touching likes: serialises likes of one post and keeps it from being deleted.
    return await conn.fetchval("SELECT true FROM posts WHERE id = $1 FOR UPDATE", post_id) is True


async def like(conn: asyncpg.Connection, user_id: int, post_id: int) -> bool | None:
    """True if this call added the like, False if it was already there, None if no such post."""
    if not await _lock_post(conn, post_id):
        return None
    added = await conn.fetchval(
        """
        INSERT INTO likes (user_id, post_id) VALUES ($1, $2)
        ON CONFLICT DO NOTHING RETURNING true
        """,
        user_id,
        post_id,
    )
    if added:
        await conn.execute("UPDATE posts SET like_count = like_count + 1 WHERE id = $1", post_id)
        changed(conn, LIKES, post_id)
    return bool(added)


async def unlike(conn: asyncpg.Connection, user_id: int, post_id: int) -> bool | None:
    """True if this call removed the like, False if there was none, None if no such post."""
    if not await _lock_post(conn, post_id):
        return None
    removed = await conn.fetchval(
        "DELETE FROM likes WHERE user_id = $1 AND post_id = $2 RETURNING true", user_id, post_id
    )
    if removed:
        await conn.execute("UPDATE posts SET like_count = like_count - 1 WHERE id = $1", post_id)
        changed(conn, LIKES, post_id)
    return bool(removed)


async def post_view(
    conn: asyncpg.Connection, post_id: int, viewer_id: int | None
) -> PostView | None:
    row = await conn.fetchrow(
        f"""
        SELECT {VIEW_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
        WHERE p.id = $2
        """,
        viewer_id,
        post_id,
    )
    return PostView(*row) if row else None


MAX_ANCESTORS = 50


async def ancestors(
    conn: asyncpg.Connection, post_id: int, viewer_id: int | None
) -> list[PostView]:
    """The posts this one replies to, oldest first (at most MAX_ANCESTORS of them), but for
    those the viewer is not to see."""
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE chain (id, depth) AS (
            SELECT in_reply_to, 1 FROM posts WHERE id = $2 AND in_reply_to IS NOT NULL
            UNION ALL
            SELECT parent.in_reply_to, chain.depth + 1
            FROM chain JOIN posts parent ON parent.id = chain.id
            WHERE parent.in_reply_to IS NOT NULL AND chain.depth < $3
        )
        SELECT {VIEW_COLUMNS}
        FROM chain JOIN posts p ON p.id = chain.id JOIN users u ON u.id = p.author_id
        WHERE {SHOWN}
        ORDER BY chain.depth DESC
        """,
        viewer_id,
        post_id,
        MAX_ANCESTORS,
    )
    return post_views(rows)


async def replies(
    conn: asyncpg.Connection, post_id: int, viewer_id: int | None, after: int, limit: int
) -> list[PostView]:
    """Direct replies the viewer is to see, oldest first, with ids above `after` (keyset
    paging)."""
    rows = await conn.fetch(
        f"""
        SELECT {VIEW_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
        WHERE p.in_reply_to = $2 AND p.id > $3 AND {SHOWN}
        ORDER BY p.id LIMIT $4
        """,
        viewer_id,
        post_id,
        after,
        limit,
    )
    return post_views(rows)
