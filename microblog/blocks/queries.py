"""SQL for blocks and mutes, and what a block or a mute changes beside its own row.

What they hide is decided in the database, by the rule of migration 0010 (see __init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from microblog.db.keyset import below
from microblog.db.transactions import Change, changed
from microblog.follows.queries import people, person_columns, unfollow
from microblog.notifications.queries import quiet
from microblog.users.queries import User

# The subject is the account whose view of the site changed: the blocker or muter.
BLOCKS = Change("blocks", "a block, unblock, mute or unmute")


@dataclass(frozen=True)
class Relation:
    """How the viewer and another account stand, as far as blocks and mutes go."""

    blocking: bool  # the viewer has blocked them
    blocked_by: bool  # they have blocked the viewer
    muting: bool  # the viewer has muted them

    def barrier(self, username: str) -> str | None:
        """Why the viewer cannot see, follow, reply to or repost @username, if they cannot."""
        if self.blocked_by:
            return f"@{username} has blocked you."
        if self.blocking:
            return f"You have blocked @{username}. Unblock them first."
        return None


NONE = Relation(blocking=False, blocked_by=False, muting=False)


async def relation(conn: asyncpg.Connection, viewer_id: int | None, other_id: int) -> Relation:
    if viewer_id is None or viewer_id == other_id:
        return NONE
    row = await conn.fetchrow(
        """
        SELECT EXISTS (SELECT FROM blocks WHERE blocker_id = $1 AND blocked_id = $2),
               EXISTS (SELECT FROM blocks WHERE blocker_id = $2 AND blocked_id = $1),
               EXISTS (SELECT FROM mutes WHERE muter_id = $1 AND muted_id = $2)
        """,
        viewer_id,
        other_id,
    )
    return Relation(*row)


async def block(conn: asyncpg.Connection, blocker_id: int, blocked_id: int) -> bool:
    """True if this call made the block. The follows between the two end, either way, with
    their counts; what each had not read from the other stops counting as unread."""
    # Unfollowing locks both users' rows first, as following does: a follow that waits for
    # them sees the block once it gets them, and refuses.
    await unfollow(conn, blocker_id, blocked_id)
    await unfollow(conn, blocked_id, blocker_id)
    added = await conn.fetchval(
        """
        INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2)
        ON CONFLICT DO NOTHING RETURNING true
        """,
        blocker_id,
        blocked_id,
    )
    if added:
        await quiet(conn, blocker_id, blocked_id)
        await quiet(conn, blocked_id, blocker_id)
        changed(conn, BLOCKS, blocker_id)
        changed(conn, BLOCKS, blocked_id)
    return bool(added)


async def unblock(conn: asyncpg.Connection, blocker_id: int, blocked_id: int) -> bool:
    """True if this call lifted the block. The follows it ended stay ended."""
    removed = await conn.fetchval(
        "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING true",
        blocker_id,
        blocked_id,
    )
    if removed:
        changed(conn, BLOCKS, blocker_id)
        changed(conn, BLOCKS, blocked_id)
    return bool(removed)


async def mute(conn: asyncpg.Connection, muter_id: int, muted_id: int) -> bool:
    """True if this call made the mute. The muted account's unread notifications to the muter
    stop counting as unread; the muted account is told nothing."""
    added = await conn.fetchval(
        "INSERT INTO mutes (muter_id, muted_id) VALUES ($1, $2) ON CONFLICT DO NOTHING "
        "RETURNING true",
        muter_id,
        muted_id,
    )
    if added:
        await quiet(conn, muter_id, muted_id)
        changed(conn, BLOCKS, muter_id)
    return bool(added)


async def unmute(conn: asyncpg.Connection, muter_id: int, muted_id: int) -> bool:
    removed = await conn.fetchval(
        "DELETE FROM mutes WHERE muter_id = $1 AND muted_id = $2 RETURNING true",
        muter_id,
        muted_id,
    )
    if removed:
        changed(conn, BLOCKS, muter_id)
    return bool(removed)


BLOCKED = f"""
    SELECT b.id AS list_id, {person_columns}
    FROM blocks b JOIN users u ON u.id = b.blocked_id
    WHERE b.blocker_id = $1 AND b.id < $2 ORDER BY b.id DESC LIMIT $3
"""

MUTED = f"""
    SELECT m.id AS list_id, {person_columns}
    FROM mutes m JOIN users u ON u.id = m.muted_id
    WHERE m.muter_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3
"""


async def hidden_ids(conn: asyncpg.Connection, viewer_id: int) -> set[int]:
    """Everyone hidden_from the viewer (migration 0010), for what filters in memory."""
    rows = await conn.fetch("SELECT * FROM hidden_from($1)", viewer_id)
    return {row[0] for row in rows}


async def blocked(
    conn: asyncpg.Connection, user_id: int, before: int | None, limit: int
) -> list[tuple[int, User]]:
    """(block id, account) of those the user has blocked, most recent first."""
    return await people(conn, BLOCKED, user_id, below(before), limit)


async def muted(
    conn: asyncpg.Connection, user_id: int, before: int | None, limit: int
) -> list[tuple[int, User]]:
    """(mute id, account) of those the user has muted, most recent first."""
    return await people(conn, MUTED, user_id, below(before), limit)
