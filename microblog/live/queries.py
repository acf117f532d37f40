"""SQL for the events table (migration 0013): writing a transaction's events, reading them in
order, replaying a stream's, trimming old ones.

Events are written by the transaction of the write they follow from, as its last statement,
under a transaction-scoped advisory lock: the next transaction that writes events waits for
this one's commit before taking its ids, so ids are taken in commit order and whoever has read
up to id N has read every event up to N, on any instance. The lock is held only for that last
statement and the commit. The NOTIFY on CHANNEL, sent by PostgreSQL on commit, carries nothing
but the transaction's highest id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import asyncpg

CHANNEL = "events"
# Arbitrary but fixed: every microblog process agrees on it, nothing else takes it.
LOCK_KEY = 0x6D6963726F_6576656E74 & 0x7FFFFFFFFFFFFFFF


@dataclass(slots=True)
class Event:
    """One row of the events table: ids and counts, never text (see the migration)."""

    id: int
    kind: str  # post, counts, unread or follows
    post_id: int | None
    author_id: int | None
    in_reply_to: int | None
    recipient_id: int | None
    like_count: int | None
    reply_count: int | None
    unread: int | None


COLUMNS = "id, kind, post_id, author_id, in_reply_to, recipient_id, like_count, reply_count, unread"

# The lock is taken by the first CTE, which every inserted row is joined with, so no id is
# drawn before the lock is held; the sequence then hands them out in commit order.
WRITE = f"""
    WITH serialized AS (SELECT pg_advisory_xact_lock({LOCK_KEY})),
    written AS (
        INSERT INTO events ({COLUMNS.removeprefix("id, ")})
        SELECT made.* FROM serialized CROSS JOIN LATERAL (
            SELECT 'post', p.id, p.author_id, p.in_reply_to,
                   NULL::bigint, NULL::integer, NULL::integer, NULL::integer
            FROM posts p WHERE p.id = ANY($1::bigint[])
            UNION ALL
            SELECT 'counts', p.id, p.author_id, p.in_reply_to,
                   NULL, p.like_count, p.reply_count, NULL
            FROM posts p WHERE p.id = ANY($2::bigint[])
            UNION ALL
            SELECT 'unread', NULL, NULL, NULL, u.id, NULL, NULL, u.unread_notifications
            FROM users u WHERE u.id = ANY($3::bigint[])
            UNION ALL
            SELECT 'follows', NULL, NULL, NULL, u.id, NULL, NULL, NULL
            FROM users u WHERE u.id = ANY($4::bigint[])
        ) AS made
        RETURNING id
    )
    SELECT pg_notify('{CHANNEL}', max(id)::text) FROM written HAVING count(*) > 0
"""


async def write_events(
    conn: asyncpg.Connection,
    *,
    new_posts: Collection[int] = (),
    counted_posts: Collection[int] = (),
    unread_of: Collection[int] = (),
    follows_of: Collection[int] = (),
) -> None:
    """Record, in the transaction on `conn` and as its last statement, the posts it wrote (ids
    of posts that no longer exist are left out: deleted), the posts whose counts it changed,
    the users whose unread count it changed, and those who followed or unfollowed someone."""
    await conn.execute(
        WRITE, sorted(new_posts), sorted(counted_posts), sorted(unread_of), sorted(follows_of)
    )


AFTER = f"SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"


async def events_after(conn: asyncpg.Connection, after: int, limit: int) -> list[Event]:
    """Every event after id `after`, oldest first, at most `limit` of them."""
    return [Event(*row) for row in await conn.fetch(AFTER, after, limit)]


async def newest_id(conn: asyncpg.Connection) -> int:
    """The id of the newest event committed (0 before the first)."""
    return await conn.fetchval(
        "SELECT greatest(max(id), (SELECT up_to FROM events_trimmed), 0) FROM events"
    )


@dataclass(frozen=True)
class Horizon:
    trimmed_up_to: int  # events up to here are gone
    last_taken: int  # the last id the sequence handed out (committed or not)


async def horizon(conn: asyncpg.Connection) -> Horizon:
    row = await conn.fetchrow(
        """
        SELECT t.up_to, CASE WHEN s.is_called THEN s.last_value ELSE 0 END
        FROM events_trimmed t, events_id_seq s
        """
    )
    return Horizon(*row)


# A stream's events from its own cursor to where the process's live events take over:
# what it is for (recipient), the posts and counts of those it follows and its own (home),
# those of one thread (thread). The stream applies its rules to each row again (live/stream.py).
REPLAY = f"""
    SELECT {COLUMNS} FROM events
    WHERE id > $1 AND id <= $2 AND (
        recipient_id = $3
        OR (kind IN ('post', 'counts') AND author_id = ANY($4::bigint[]))
        OR (kind IN ('post', 'counts') AND (in_reply_to = $5 OR post_id = $5))
    )
    ORDER BY id LIMIT $6
"""


async def replay(
    conn: asyncpg.Connection,
    *,
    after: int,
    up_to: int,
    user_id: int,
    authors: Collection[int],
    thread: int | None,
    limit: int,
) -> list[Event]:
    rows = await conn.fetch(REPLAY, after, up_to, user_id, sorted(authors), thread, limit)
    return [Event(*row) for row in rows]


TRIM = """
    WITH boundary AS (
        SELECT coalesce(
            (SELECT id FROM events WHERE created_at >= now() - make_interval(secs => $1)
             ORDER BY id LIMIT 1),
            (SELECT max(id) + 1 FROM events)
        ) AS first_kept
    ), gone AS (
        DELETE FROM events WHERE id < (SELECT first_kept FROM boundary) RETURNING id
    )
    UPDATE events_trimmed SET up_to = greatest(up_to, (SELECT max(id) FROM gone))
    WHERE EXISTS (SELECT 1 FROM gone)
    RETURNING (SELECT count(*) FROM gone)
"""


async def trim(conn: asyncpg.Connection, older_than: float) -> int:
    """Delete the events older than `older_than` seconds; how many went."""
    return await conn.fetchval(TRIM, older_than) or 0
