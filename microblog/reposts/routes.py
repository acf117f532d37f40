"""Reposting and taking a repost back."""

from __future__ import annotations

from quart import Blueprint, Response, abort, redirect, request

from microblog.blocks.queries import relation
from microblog.jobs.queue import enqueue
from microblog.posts.queries import post_view
from microblog.reposts import queries
from microblog.reposts.jobs import post_reposted
from microblog.users.sessions import current_user, login_required
from microblog.web.db import transaction
from microblog.web.forms import local_path
from microblog.web.htmx import html, is_htmx

blueprint = Blueprint("reposts", __name__)

GONE = "This post does not exist, or it was deleted."


async def _toggle(post_id: int, *, reposted: bool) -> Response:
    user = current_user()
    async with transaction() as conn:
        post = await post_view(conn, post_id, user.id)
        if post is None:
            abort(404, GONE)
        if not reposted:
            await queries.unrepost(conn, user.id, post_id)
        else:
            barrier = (await relation(conn, user.id, post.author_id)).barrier(post.author_username)
            if barrier:
                abort(403, f"You cannot repost this post. {barrier}")
            if await queries.repost(conn, user.id, post_id):
                await enqueue(conn, post_reposted, {"post_id": post_id, "user_id": user.id})
        post = await post_view(conn, post_id, user.id)  # with its new count
        if post is None:  # deleted meanwhile
            abort(404, GONE)
    if is_htmx():
        return await html("_repost_button.html", post=post)
    return redirect(local_path((await request.form).get("next"), f"/posts/{post_id}"), 303)


@blueprint.route("/posts/<id:post_id>/repost", methods=["POST"])
@login_required
async def repost(post_id: int) -> Response:
    return await _toggle(post_id, reposted=True)


@blueprint.route("/posts/<id:post_id>/unrepost", methods=["POST"])
@login_required
async def unrepost(post_id: int) -> Response:
    return await _toggle(post_id, reposted=False)
