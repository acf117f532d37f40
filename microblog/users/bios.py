"""Bios as pages show them: linked like posts, with @mentions of accounts that exist."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from markupsafe import Markup

from microblog.posts.render import mentions, render_body
from microblog.users.queries import User, existing_usernames


async def linked_bios(conn: asyncpg.Connection, users: Sequence[User]) -> dict[int, Markup]:
    """Each user's bio as HTML, by user id; one query for the mentions of them all."""
    mentioned = set().union(*(mentions(user.bio) for user in users))
    known = await existing_usernames(conn, mentioned)
    return {user.id: render_body(user.bio, known) for user in users if user.bio}
