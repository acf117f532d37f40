"""SQL for notifications and the unread count kept on users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from microblog.db.keyset import below
from microblog.db.transactions import Change, changed

# Subjects are the recipients: whose count in the navigation changed.
UNREAD = Change("unread", "notifications added, read or gone, changing a count of unread ones")


@dataclass(frozen=True)
class Notification:
    id: int
    kind: str
    actor_username: str
    actor_display_name: str
    post_id: int | None
    post_body: str | None
    created_at: datetime
    read: bool

    @property
    def actor_name(self) -> str:
        return self.actor_display_name or self.actor_username


async def add(
    conn: asyncpg.Connection,
    actor_id: int,
    post_id: int | None,
    recipients: list[tuple[int, str]],
) -> int:
    """Add (recipient, kind) notifications from actor about post; return how many were new.

    Never to the actor themself, nor to anyone who has blocked, been blocked by or muted the
    actor (microblog/blocks/); an existing identical notification is left alone.
    """
    if not recipients:
        return 0
    added, recounted = await conn.fetchrow(
        """
        WITH new AS (
            INSERT INTO notifications (recipient_id, actor_id, kind, post_id)
            SELECT DISTINCT r.recipient_id, $1::bigint, r.kind, $2::bigint
            FROM unnest($3::bigint[], $4::text[]) AS r (recipient_id, kind)
            WHERE r.recipient_id <> $1::bigint AND shows_to(r.recipient_id, $1::bigint)
            ON CONFLICT DO NOTHING
            RETURNING recipient_id
        ), counted AS (
            UPDATE users SET unread_notifications = unread_notifications + n.added
            FROM (SELECT recipient_id, count(*) AS added FROM new GROUP BY recipient_id) AS n
            WHERE users.id = n.recipient_id
            RETURNING users.id, n.added
        )
        SELECT coalesce(sum(added), 0)::int, array(SELECT id FROM counted) FROM counted
        """,
        actor_id,
        post_id,
        [recipient for recipient, _ in recipients],
        [kind for _, kind in recipients],
    )
    for recipient_id in recounted:
        changed(conn, UNREAD, recipient_id)
    return added


async def page(
    conn: asyncpg.Connection, recipient_id: int, before: int | None, limit: int
) -> list[Notification]:
    rows = await conn.fetch(
        """
        SELECT n.id, n.kind, a.username AS actor_username, a.display_name AS actor_display_name,
               n.post_id, p.body AS post_body, n.created_at, n.read_at IS NOT NULL AS read
        FROM notifications n
        JOIN users a ON a.id = n.actor_id
        LEFT JOIN posts p ON p.id = n.post_id
        WHERE n.recipient_id = $1 AND n.id < $2
          AND n.actor_id NOT IN (SELECT * FROM hidden_from($1))
        ORDER BY n.id DESC LIMIT $3
        """,
        recipient_id,
        below(before),
        limit,
    )
    return [Notification(**dict(row)) for row in rows]


def _marking_read(which: str) -> str:
    """The statement that marks read the recipient's ($1) unread notifications that `which`
    picks, and takes them off the unread count; true when it changed the count."""
    return f"""
        WITH seen AS (
            UPDATE notifications SET read_at = now()
            WHERE recipient_id = $1 AND read_at IS NULL AND {which}
            RETURNING 1
        )
        UPDATE users
        SET unread_notifications = greatest(unread_notifications - (SELECT count(*) FROM seen), 0)
        WHERE id = $1 AND EXISTS (SELECT 1 FROM seen)
        RETURNING true
    """


_READ_UP_TO = _marking_read("id <= $2")
_READ_FROM = _marking_read("actor_id = $2")


async def mark_read(conn: asyncpg.Connection, recipient_id: int, up_to: int) -> None:
    """Mark read what the recipient has been shown (ids up to `up_to`), and recount."""
    if await conn.fetchval(_READ_UP_TO, recipient_id, up_to):
        changed(conn, UNREAD, recipient_id)


async def quiet(conn: asyncpg.Connection, recipient_id: int, actor_id: int) -> None:
    """The recipient has blocked or muted the actor (or been blocked): what the actor's
    notifications left unread stops counting, as the page no longer shows them."""
    if await conn.fetchval(_READ_FROM, recipient_id, actor_id):
        changed(conn, UNREAD, recipient_id)


async def forget_post(conn: asyncpg.Connection, post_id: int) -> None:
    """Before a post is deleted: its unread notifications stop counting as unread."""
    recounted = await conn.fetch(
        """
        UPDATE users SET unread_notifications = greatest(unread_notifications - gone.unread, 0)
        FROM (
            SELECT recipient_id, count(*) AS unread FROM notifications
            WHERE post_id = $1 AND read_at IS NULL GROUP BY recipient_id
        ) AS gone
        WHERE users.id = gone.recipient_id
        RETURNING users.id
        """,
        post_id,
    )
    for row in recounted:
        changed(conn, UNREAD, row["id"])
