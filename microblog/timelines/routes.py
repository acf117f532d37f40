"""GET /, /public, /@<username> and /tags/<tag>."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from quart import Blueprint, Response, abort

from microblog.blocks.queries import relation
from microblog.follows.queries import is_following
from microblog.posts.cards import render_cards
from microblog.posts.compose import blank_compose
from microblog.posts.queries import PostView
from microblog.posts.render import tag_key
from microblog.timelines import public_cache, queries
from microblog.users.bios import linked_bios
from microblog.users.queries import user_by_username
from microblog.users.sessions import current_user
from microblog.web.db import connection, reading
from microblog.web.htmx import render
from microblog.web.pagination import Page, cursor, keyset_page, pages, remember_place

blueprint = Blueprint("timelines", __name__)
blueprint.after_request(remember_place)  # infinite scroll: Back comes back to the same place

Fetch = Callable[[asyncpg.Connection, int | None, int], Awaitable[list[PostView]]]


async def _fetch(conn: asyncpg.Connection, fetch: Fetch) -> Page[PostView]:
    return await keyset_page(lambda before, limit: fetch(conn, before, limit))


async def _shown(page: Page[PostView]) -> dict[str, Any]:
    """A page of a timeline as templates take it: the cards and the next page's cursor.
    Rendered after the page's connection went back to the pool."""
    return {
        "cards": await render_cards(page.rows, current_user()),
        "next_before": page.rows[-1].entry_id if page.more else None,
        "empty": not page.rows,
    }


async def _public_page(viewer_id: int | None) -> dict[str, Any]:
    """A page of the public timeline; for anonymous visitors the first one comes cached."""

    async def compute(read=reading) -> dict[str, Any]:
        async with read() as conn:
            page = await _fetch(conn, lambda c, b, n: queries.public(c, viewer_id, b, n))
        return await _shown(page)

    if viewer_id is None and cursor("before") is None and pages() == 1:
        # Shared until the next write bumps its version, so drawn from the primary: from a
        # replica behind that write it would stay stale for the cache's TTL.
        cached = await public_cache.first_page(lambda: compute(connection))
        if cached is not None:
            return cached
    return await compute()


def _viewer_id() -> int | None:
    viewer = current_user()
    return viewer.id if viewer else None


@blueprint.route("/")
async def home() -> Response:
    viewer = current_user()
    if viewer is None:
        page = await _public_page(None)
    else:
        async with reading() as conn:
            fetched = await _fetch(conn, lambda c, b, n: queries.home(c, viewer.id, b, n))
        page = await _shown(fetched)
    return await render("home.html", "_timeline_slot.html", compose=blank_compose(), **page)


@blueprint.route("/public")
async def public() -> Response:
    page = await _public_page(_viewer_id())
    return await render("public.html", "_timeline_slot.html", **page)


@blueprint.route("/@<username:username>")
async def profile(username: str) -> Response:
    viewer_id = _viewer_id()
    async with reading() as conn:
        user = await user_by_username(conn, username)
        if user is None:
            abort(404, f"There is no one called @{username} here.")
        standing = await relation(conn, viewer_id, user.id)
        if standing.blocked_by:
            abort(403, standing.barrier(user.username))
        following = viewer_id is not None and await is_following(conn, viewer_id, user.id)
        # A profile the viewer has blocked says so, without its posts.
        page = (
            Page([], more=False)
            if standing.blocking
            else await _fetch(conn, lambda c, b, n: queries.profile(c, user.id, viewer_id, b, n))
        )
        bios = await linked_bios(conn, [user])
    return await render(
        "profile.html",
        "_timeline.html",
        profile=user,
        relation=standing,
        following=following,
        bios=bios,
        **await _shown(page),
    )


@blueprint.route("/tags/<tag>")
async def tag(tag: str) -> Response:
    key = tag_key(tag)
    if key is None:
        abort(404, "That is not a hashtag.")
    viewer_id = _viewer_id()
    async with reading() as conn:
        page = await _fetch(conn, lambda c, b, n: queries.tagged(c, key, viewer_id, b, n))
    return await render("tag.html", "_timeline.html", tag=key, **await _shown(page))
