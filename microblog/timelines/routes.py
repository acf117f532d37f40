"""GET /, /public, /@<username> and /tags/<tag>."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from quart import Blueprint, Response, abort

from microblog.follows.queries import is_following
from microblog.posts.forms import NewPost
from microblog.posts.present import with_bodies
from microblog.posts.queries import PostView
from microblog.posts.render import is_hashtag
from microblog.timelines import queries
from microblog.users.queries import user_by_username
from microblog.web.db import connection
from microblog.web.htmx import render
from microblog.web.pagination import PAGE_SIZE, cursor
from microblog.web.sessions import current_user

blueprint = Blueprint("timelines", __name__)

Fetch = Callable[[asyncpg.Connection, int | None, int], Awaitable[list[PostView]]]


async def _page(conn: asyncpg.Connection, fetch: Fetch) -> dict[str, Any]:
    """One page of a timeline: its posts, rendered, and the cursor of the next page."""
    posts = await fetch(conn, cursor("before"), PAGE_SIZE + 1)
    more = len(posts) > PAGE_SIZE
    posts = await with_bodies(conn, posts[:PAGE_SIZE])
    return {"posts": posts, "next_before": posts[-1].id if more else None}


def _viewer_id() -> int | None:
    viewer = current_user()
    return viewer.id if viewer else None


@blueprint.route("/")
async def home() -> Response:
    viewer = current_user()
    async with connection() as conn:
        if viewer is None:
            page = await _page(conn, lambda c, b, n: queries.public(c, None, b, n))
        else:
            page = await _page(conn, lambda c, b, n: queries.home(c, viewer.id, b, n))
    return await render("home.html", "_timeline.html", compose=NewPost(body=""), **page)


@blueprint.route("/public")
async def public() -> Response:
    viewer_id = _viewer_id()
    async with connection() as conn:
        page = await _page(conn, lambda c, b, n: queries.public(c, viewer_id, b, n))
    return await render("public.html", "_timeline.html", **page)


@blueprint.route("/@<username:username>")
async def profile(username: str) -> Response:
    viewer_id = _viewer_id()
    async with connection() as conn:
        user = await user_by_username(conn, username)
        if user is None:
            abort(404, f"There is no one called @{username} here.")
        following = viewer_id is not None and await is_following(conn, viewer_id, user.id)
        page = await _page(conn, lambda c, b, n: queries.profile(c, user.id, viewer_id, b, n))
    return await render("profile.html", "_timeline.html", profile=user, following=following, **page)


@blueprint.route("/tags/<tag>")
async def tag(tag: str) -> Response:
    if not is_hashtag(tag):
        abort(404, "That is not a hashtag.")
    viewer_id = _viewer_id()
    async with connection() as conn:
        page = await _page(conn, lambda c, b, n: queries.tagged(c, tag.lower(), viewer_id, b, n))
    return await render("tag.html", "_timeline.html", tag=tag.lower(), **page)
