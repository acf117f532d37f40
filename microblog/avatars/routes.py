"""GET /@<username>/avatar: the picture, cached for good when asked for by its digest."""

from __future__ import annotations

from quart import Blueprint, Response, abort, request

from microblog.avatars.queries import avatar_by_username
from microblog.web.assets import IMMUTABLE
from microblog.web.db import connection
from microblog.web.ratelimits import exempt

blueprint = Blueprint("avatars", __name__)


@blueprint.route("/@<username:username>/avatar")
@exempt  # a timeline shows twenty of them, and each is one indexed read
async def avatar(username: str) -> Response:
    async with connection() as conn:
        found = await avatar_by_username(conn, username)
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
