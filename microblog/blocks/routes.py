"""Block, unblock, mute and unmute an account, and the lists of both in settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
from quart import Blueprint, Response, abort, redirect, request

from microblog.blocks import queries
from microblog.users.queries import User, user_by_username
from microblog.users.sessions import current_user, login_required
from microblog.web.db import connection, transaction
from microblog.web.forms import local_path, referrer_path
from microblog.web.htmx import html, is_htmx, render
from microblog.web.pagination import keyset_page, remember_place
from microblog.web.templating import here

blueprint = Blueprint("blocks", __name__)
blueprint.after_request(remember_place)  # infinite scroll: Back comes back to the same place

Change = Callable[[asyncpg.Connection, int, int], Awaitable[bool]]


async def _target(conn: asyncpg.Connection, username: str, verb: str) -> User:
    target = await user_by_username(conn, username)
    if target is None:
        abort(404, f"There is no one called @{username} here.")
    if target.id == current_user().id:
        abort(422, f"You cannot {verb} yourself.")
    return target


async def _change(username: str, change: Change, *, kind: str, on: bool) -> Response:
    verb = kind if on else f"un{kind}"
    async with transaction() as conn:
        target = await _target(conn, username, verb)
        await change(conn, current_user().id, target.id)
    if not is_htmx():
        return redirect(local_path((await request.form).get("next"), f"/@{target.username}"), 303)
    if kind == "block" and urlsplit(here()).path.lower() == f"/@{target.username}".lower():
        # The profile shows something else now (its posts, its buttons): load it again.
        response = Response("", status=200)
        response.headers["HX-Redirect"] = f"/@{target.username}"
        return response
    return await html("_relation_button.html", person=target, kind=kind, on=on)


@blueprint.route("/@<username:username>/block", methods=["GET", "POST"])
@login_required
async def block(username: str) -> Response:
    if request.method == "GET":  # a plain form asks first; htmx asks with hx-confirm
        async with connection() as conn:
            target = await _target(conn, username, "block")
        return await html("block.html", person=target, next=referrer_path(f"/@{target.username}"))
    return await _change(username, queries.block, kind="block", on=True)


@blueprint.route("/@<username:username>/unblock", methods=["POST"])
@login_required
async def unblock(username: str) -> Response:
    return await _change(username, queries.unblock, kind="block", on=False)


@blueprint.route("/@<username:username>/mute", methods=["POST"])
@login_required
async def mute(username: str) -> Response:
    return await _change(username, queries.mute, kind="mute", on=True)


@blueprint.route("/@<username:username>/unmute", methods=["POST"])
@login_required
async def unmute(username: str) -> Response:
    return await _change(username, queries.unmute, kind="mute", on=False)


async def _list(kind: str) -> Response:
    user = current_user()
    fetch = queries.blocked if kind == "block" else queries.muted
    async with connection() as conn:
        page = await keyset_page(lambda before, limit: fetch(conn, user.id, before, limit))
    return await render(
        "relations.html",
        "_relations.html",
        kind=kind,
        people=[person for _, person in page.rows],
        next_before=page.rows[-1][0] if page.more else None,
    )


@blueprint.route("/settings/blocks")
@login_required
async def blocked() -> Response:
    return await _list("block")


@blueprint.route("/settings/mutes")
@login_required
async def muted() -> Response:
    return await _list("mute")
