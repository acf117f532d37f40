"""Profile pictures: uploaded and removed from the settings page, and served to everyone
(GET /@<username>/avatar), cached for good when asked for by their digest."""

from __future__ import annotations

import hashlib

from quart import Blueprint, Response, abort, redirect, request
from werkzeug.exceptions import RequestEntityTooLarge

from microblog.avatars import queries
from microblog.pictures import SERVED_TYPE, Refused, square, too_large
from microblog.users.routes import settings_page
from microblog.users.sessions import current_user, login_required
from microblog.web.assets import IMMUTABLE
from microblog.web.db import reading, transaction
from microblog.web.errors import error_response
from microblog.web.ratelimits import exempt

# The side of the square every picture is served as: twice the largest shown, for sharp
# screens.
SIDE = 400

blueprint = Blueprint("avatars", __name__)
# Serving pictures needs no visitor's row (users/sessions.py): a blueprint of its own.
pictures = Blueprint("pictures", __name__)


@blueprint.route("/settings/avatar", methods=["POST"])
@login_required
async def upload_avatar() -> Response:
    upload = (await request.files).get("avatar")
    try:
        picture = await square(upload.read() if upload else b"", SIDE)
    except Refused as refused:
        return await settings_page(refused.status, avatar_error=str(refused))
    digest = hashlib.sha256(picture).hexdigest()[:16]
    async with transaction() as conn:
        await queries.set_avatar(conn, current_user().id, SERVED_TYPE, picture, digest)
    return redirect("/settings?saved=avatar", 303)


@blueprint.errorhandler(RequestEntityTooLarge)
async def larger_than_any_request(_error: RequestEntityTooLarge) -> Response:
    """An upload over the request limit (web/forms.py refuses it before any view runs) is
    refused on the settings page all the same, as a picture of the wrong kind is."""
    if request.endpoint != "avatars.upload_avatar" or current_user() is None:
        return await error_response(413)
    refused = too_large(request.content_length, exactly=False)
    return await settings_page(refused.status, avatar_error=str(refused))


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
