"""Follow and unfollow, and the follower and following lists of a profile."""

from __future__ import annotations

from quart import Blueprint, Response, abort, redirect, request

from microblog.follows import queries
from microblog.follows.jobs import followed
from microblog.jobs.queue import enqueue
from microblog.users.bios import linked_bios
from microblog.users.queries import User, user_by_username
from microblog.users.sessions import current_user, login_required
from microblog.web.db import reading, transaction
from microblog.web.forms import local_path
from microblog.web.htmx import html, is_htmx, render
from microblog.web.pagination import keyset_page, remember_place

blueprint = Blueprint("follows", __name__)
blueprint.after_request(remember_place)  # infinite scroll: Back comes back to the same place


async def _change(username: str, *, follow: bool) -> Response:
    viewer = current_user()
    async with transaction() as conn:
        target = await user_by_username(conn, username)
        if target is None:
            abort(404, f"There is no one called @{username} here.")
        if target.id == viewer.id:
            abort(422, "You cannot follow yourself.")
        if follow:
            added = await queries.follow(conn, viewer.id, target.id)
            if added is None:
                abort(
                    403, f"You cannot follow @{target.username}: one of you has blocked the other."
                )
            if added:
                await enqueue(conn, followed, {"follower_id": viewer.id, "followee_id": target.id})
        else:
            await queries.unfollow(conn, viewer.id, target.id)
        target = await user_by_username(conn, username)  # with its new follower count
    if is_htmx():
        return await html("_follow_button.html", profile=target, following=follow, counts_oob=True)
    return redirect(local_path((await request.form).get("next"), f"/@{target.username}"), 303)


@blueprint.route("/@<username:username>/follow", methods=["POST"])
@login_required
async def follow(username: str) -> Response:
    return await _change(username, follow=True)


@blueprint.route("/@<username:username>/unfollow", methods=["POST"])
@login_required
async def unfollow(username: str) -> Response:
    return await _change(username, follow=False)


async def _people_page(username: str, *, followers: bool) -> Response:
    viewer = current_user()
    viewer_id = viewer.id if viewer else None
    async with reading() as conn:
        user: User | None = await user_by_username(conn, username)
        if user is None:
            abort(404, f"There is no one called @{username} here.")
        if not await queries.may_see(conn, viewer_id, user.id):
            abort(
                403, f"You cannot see @{user.username}'s people: one of you has blocked the other."
            )
        fetch = queries.followers if followers else queries.following
        page = await keyset_page(
            lambda before, limit: fetch(conn, user.id, viewer_id, before, limit)
        )
        people = [person for _, person in page.rows]
        bios = await linked_bios(conn, people)
    return await render(
        "people.html",
        "_people.html",
        profile=user,
        followers=followers,
        people=people,
        bios=bios,
        next_before=page.rows[-1][0] if page.more else None,
    )


@blueprint.route("/@<username:username>/followers")
async def followers(username: str) -> Response:
    return await _people_page(username, followers=True)


@blueprint.route("/@<username:username>/following")
async def following(username: str) -> Response:
    return await _people_page(username, followers=False)
