"""SQL for the avatars table and the digest kept on users."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from microblog.db.transactions import Change, changed

AVATARS = Change("avatars", "a picture uploaded or removed (it shows beside the author's posts)")


@dataclass(frozen=True)
class Avatar:
    content_type: str
    image: bytes
    digest: str


async def set_avatar(
    conn: asyncpg.Connection, user_id: int, content_type: str, image: bytes, digest: str
) -> None:
    await conn.execute(
        """
        INSERT INTO avatars (user_id, content_type, image, digest) VALUES ($1, $2, $3, $4)
        ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type,
            image = excluded.image, digest = excluded.digest, updated_at = now()
        """,
        user_id,
        content_type,
        image,
        digest,
    )
    await conn.execute("UPDATE users SET avatar_digest = $2 WHERE id = $1", user_id, digest)
    changed(conn, AVATARS, user_id)


async def remove_avatar(conn: asyncpg.Connection, user_id: int) -> None:
    await conn.execute("DELETE FROM avatars WHERE user_id = $1", user_id)
    await conn.execute("UPDATE users SET avatar_digest = NULL WHERE id = $1", user_id)
    changed(conn, AVATARS, user_id)


async def avatar_by_username(conn: asyncpg.Connection, username: str) -> Avatar | None:
    row = await conn.fetchrow(
        """
        SELECT a.content_type, a.image, a.digest
        FROM users u JOIN avatars a ON a.user_id = u.id
        WHERE lower(u.username) = lower($1)
        """,
        username,
    )
    return Avatar(**dict(row)) if row else None
