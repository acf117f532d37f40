"""SQL for post_pictures: uploads kept until their job has made the pictures served."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from microblog.db.transactions import Change, changed

PICTURES = Change("pictures", "a post's picture made ready to show (or found unreadable)")

PENDING, READY, FAILED = "pending", "ready", "failed"


@dataclass(frozen=True)
class Upload:
    """A picture as sent with a post, checked by its header, and the words that describe it."""

    data: bytes
    alt: str


@dataclass(frozen=True)
class Served:
    content_type: str
    image: bytes


async def add_pictures(conn: asyncpg.Connection, post_id: int, uploads: list[Upload]) -> list[int]:
    """The new pictures' ids, in order; each waits for its job (post_pictures/jobs.py)."""
    rows = await conn.fetch(
        """
        INSERT INTO post_pictures (post_id, position, alt, original)
        SELECT $1, position, alt, original
        FROM unnest($2::smallint[], $3::text[], $4::bytea[]) AS u (position, alt, original)
        ORDER BY position
        RETURNING id
        """,
        post_id,
        list(range(1, len(uploads) + 1)),
        [upload.alt for upload in uploads],
        [upload.data for upload in uploads],
    )
    return [row["id"] for row in rows]


async def original(conn: asyncpg.Connection, picture_id: int) -> bytes | None:
    """The upload of a picture still waiting for its job; None once it is done, or gone."""
    return await conn.fetchval(
        "SELECT original FROM post_pictures WHERE id = $1 AND state = 'pending'", picture_id
    )


async def make_ready(
    conn: asyncpg.Connection,
    picture_id: int,
    image: bytes,
    thumb: bytes,
    thumb_size: tuple[int, int],
    content_type: str,
) -> bool:
    """Serve the picture as `image` and `thumb` from now on, its upload forgotten. False when
    another run of the job did it first, or the post is gone."""
    post_id = await conn.fetchval(
        """
        UPDATE post_pictures SET state = 'ready', original = NULL, content_type = $6,
            image = $2, thumb = $3, thumb_width = $4, thumb_height = $5
        WHERE id = $1 AND state = 'pending'
        RETURNING post_id
        """,
        picture_id,
        image,
        thumb,
        *thumb_size,
        content_type,
    )
    if post_id is not None:
        changed(conn, PICTURES, post_id)
    return post_id is not None


async def give_up(conn: asyncpg.Connection, picture_id: int) -> None:
    """The upload could not be decoded after all: the post says so in its place."""
    post_id = await conn.fetchval(
        """
        UPDATE post_pictures SET state = 'failed', original = NULL
        WHERE id = $1 AND state = 'pending' RETURNING post_id
        """,
        picture_id,
    )
    if post_id is not None:
        changed(conn, PICTURES, post_id)


async def served(conn: asyncpg.Connection, picture_id: int, *, thumb: bool) -> Served | None:
    """A ready picture, whole or as its thumbnail; None while it is not (or never will be)."""
    row = await conn.fetchrow(
        f"""
        SELECT content_type, {"thumb" if thumb else "image"} AS image
        FROM post_pictures WHERE id = $1 AND state = 'ready'
        """,
        picture_id,
    )
    return Served(**dict(row)) if row else None


async def slot(conn: asyncpg.Connection, picture_id: int) -> asyncpg.Record | None:
    """A picture as a post shows it: (id, alt, state, thumb_width, thumb_height), as in the
    pictures of posts/queries.py's PostView."""
    return await conn.fetchrow(
        """
        SELECT id, alt, state, thumb_width, thumb_height FROM post_pictures WHERE id = $1
        """,
        picture_id,
    )
