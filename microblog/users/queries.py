"""SQL for the users table, and for their sessions."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import asyncpg

from microblog.db.transactions import Change, changed

# The name and bio people see beside the user's posts.
PROFILES = Change("profiles", "a profile saved (the author's display name shows on their posts)")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    bio: str
    session_epoch: int
    post_count: int
    follower_count: int
    following_count: int
    unread_notifications: int
    avatar_digest: str | None
    created_at: datetime

    @property
    def name(self) -> str:
        return self.display_name or self.username


FIELDS = tuple(field.name for field in fields(User))
COLUMNS = ", ".join(FIELDS)


def columns_of(alias: str) -> str:
    """The columns a User is made of, of the users table as `alias` in a join."""
    return ", ".join(f"{alias}.{name}" for name in FIELDS)


def _user(row: asyncpg.Record | None) -> User | None:
    return User(**dict(row)) if row is not None else None


@dataclass(frozen=True)
class Account:
    """A user's row and the sessions they are logged in with: what a request checks its
    session cookie against."""

    user: User
    sessions: frozenset[int]  # ids of user_sessions


async def account_by_id(conn: asyncpg.Connection, user_id: int) -> Account | None:
    row = await conn.fetchrow(
        f"""
        SELECT {COLUMNS},
            ARRAY(SELECT s.id FROM user_sessions s WHERE s.user_id = users.id) AS sessions
        FROM users WHERE id = $1
        """,
        user_id,
    )
    if row is None:
        return None
    fields = dict(row)
    sessions = frozenset(fields.pop("sessions"))
    return Account(User(**fields), sessions)


async def start_session(conn: asyncpg.Connection, user_id: int, lifetime: timedelta) -> int:
    """A new session of the user; theirs that outlived `lifetime` (their cookies are refused
    by age anyway) are deleted on the way, so no account collects them."""
    return await conn.fetchval(
        """
        WITH expired AS (
            DELETE FROM user_sessions WHERE user_id = $1 AND created_at < now() - $2::interval
        )
        INSERT INTO user_sessions (user_id) VALUES ($1) RETURNING id
        """,
        user_id,
        lifetime,
    )


async def end_session(conn: asyncpg.Connection, user_id: int, session_id: int) -> None:
    await conn.execute(
        "DELETE FROM user_sessions WHERE id = $1 AND user_id = $2", session_id, user_id
    )


async def create_user(conn: asyncpg.Connection, username: str, password_hash: str) -> User | None:
    """The new user, or None when the name is taken (in any letter case)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO users (username, password_hash) VALUES ($1, $2)
        ON CONFLICT ((lower(username))) DO NOTHING
        RETURNING {COLUMNS}
        """,
        username,
        password_hash,
    )
    return _user(row)


async def user_by_id(conn: asyncpg.Connection, user_id: int) -> User | None:
    return _user(await conn.fetchrow(f"SELECT {COLUMNS} FROM users WHERE id = $1", user_id))


async def user_by_username(conn: asyncpg.Connection, username: str) -> User | None:
    row = await conn.fetchrow(
        f"""
        SELECT {COLUMNS} FROM users WHERE lower(username) = lower($1) AND deleted_at IS NULL
        """,
        username,
    )
    return _user(row)


async def password_hash_by_username(
    conn: asyncpg.Connection, username: str
) -> tuple[User, str] | None:
    row = await conn.fetchrow(
        f"""
        SELECT {COLUMNS}, password_hash FROM users
        WHERE lower(username) = lower($1) AND deleted_at IS NULL
        """,
        username,
    )
    if row is None:
        return None
    fields = dict(row)
    password_hash = fields.pop("password_hash")
    return User(**fields), password_hash


async def password_hash_by_id(conn: asyncpg.Connection, user_id: int) -> str | None:
    return await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)


async def set_password(conn: asyncpg.Connection, user_id: int, password_hash: str) -> User:
    """Store the new hash and bump the session epoch, ending every other session."""
    row = await conn.fetchrow(
        f"""
        UPDATE users SET password_hash = $2, session_epoch = session_epoch + 1
        WHERE id = $1 RETURNING {COLUMNS}
        """,
        user_id,
        password_hash,
    )
    return User(**dict(row))


async def rehash_password(conn: asyncpg.Connection, user_id: int, password_hash: str) -> None:
    """Upgrade a hash made with older parameters; sessions stay valid."""
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def update_profile(
    conn: asyncpg.Connection, user_id: int, display_name: str, bio: str
) -> User:
    row = await conn.fetchrow(
        f"UPDATE users SET display_name = $2, bio = $3 WHERE id = $1 RETURNING {COLUMNS}",
        user_id,
        display_name,
        bio,
    )
    changed(conn, PROFILES, user_id)
    return User(**dict(row))


async def existing_usernames(conn: asyncpg.Connection, names: set[str]) -> set[str]:
    """Which of these lower-cased names belong to an account."""
    if not names:
        return set()
    rows = await conn.fetch(
        "SELECT lower(username) FROM users WHERE lower(username) = ANY($1::text[])", sorted(names)
    )
    return {row[0] for row in rows}
