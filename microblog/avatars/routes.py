"""Profile pictures: uploaded and removed from the settings page, and served to everyone
(GET /@<username>/avatar), cached for good when asked for by their digest."""

from __future__ import annotations

from quart import Blueprint, Response, abort, redirect, request

from microblog.avatars import queries
from microblog.avatars.images import digest, image_type, problem
from microblog.users.routes import settings_page
from microblog.users.sessions import current_user, login_required
from microblog.web.assets import IMMUTABLE
from microblog.web.db import reading, transaction
from microblog.web.ratelimits import exempt

blueprint = Blueprint("avatars", __name__)
# Serving pictures needs no visitor's row (users/sessions.py): a blueprint of its own.
pictures = Blueprint("pictures", __name__)


@blueprint.route("/settings/avatar", methods=["POST"])
@login_required
async def upload_avatar() -> Response:
    upload = (await request.files).get("avatar")
    data = upload.read() if upload else b""
    if message := problem(data):
        return await settings_page(422, avatar_error=message)
    async with transaction() as conn:
        await queries.set_avatar(conn, current_user().id, image_type(data), data, digest(data))
    return redirect("/settings?saved=avatar", 303)


@blueprint.route("/settings/avatar/delete", methods=["POST"])
@login_required
async def remove_avatar() -> Response:
    async with transaction() as conn:
        await queries.remove_avatar(conn, current_user().id)
    return redirect("/settings?saved=avatar-removed", 303)


@pictures.route("/@<username:username>/avatar")
@exempt  # a timeline shows twenty of them, and each is one indexed read
async def avatar(username: str) -> Response:
    async with reading() as conn:
        found = await queries.avatar_by_username(conn, username)
    if found is None:
        abort(404, f"@{username} has no picture.")
    unchanged = request.if_none_match.contains(found.digest)
    response = Response(b"" if unchanged else found.image, status=304 if unchanged else 200)
    response.content_type = found.content_type
    current = request.args.get("v") == found.digest
    response.headers["Cache-Control"] = IMMUTABLE if current else "no-cache"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.set_etag(found.digest)
    return response
