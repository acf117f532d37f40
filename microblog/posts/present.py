"""Turn posts from queries into what templates show: bodies rendered with live @mentions."""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from microblog.posts.queries import PostView
from microblog.posts.render import mentions, render_body
from microblog.users.queries import existing_usernames


async def with_bodies(conn: asyncpg.Connection, posts: list[PostView]) -> list[PostView]:
    """One query for every @name on the page, then each body rendered."""
    names: set[str] = set()
    for post in posts:
        names |= mentions(post.body)
    known = await existing_usernames(conn, names)
    return [replace(post, body_html=render_body(post.body, known)) for post in posts]
