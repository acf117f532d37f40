"""Serving the pictures of posts to everyone: GET /pictures/<id> (the picture), its thumbnail
(/pictures/<id>/thumb), and its place in a post (/pictures/<id>/slot), which a post shows
while the picture is being prepared and asks for again until it is ready."""

from __future__ import annotations

from quart import Blueprint, Response, abort

from microblog.post_pictures import queries
from microblog.web.assets import IMMUTABLE
from microblog.web.db import reading
from microblog.web.htmx import html
from microblog.web.ratelimits import exempt

# Serving pictures needs no visitor's row (users/sessions.py): a blueprint of its own.
blueprint = Blueprint("post_pictures", __name__)


async def _served(picture_id: int, *, thumb: bool) -> Response:
    async with reading() as conn:
        found = await queries.served(conn, picture_id, thumb=thumb)
    if found is None:
        abort(404, "This picture does not exist, or it is not ready yet.")
    response = Response(found.image)
    response.content_type = found.content_type
    # A picture's id names its bytes for good: once ready, they never change.
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blueprint.route("/pictures/<id:picture_id>")
@exempt  # one indexed read, as an avatar's
async def picture(picture_id: int) -> Response:
    return await _served(picture_id, thumb=False)


@blueprint.route("/pictures/<id:picture_id>/thumb")
@exempt
async def thumb(picture_id: int) -> Response:
    return await _served(picture_id, thumb=True)


@blueprint.route("/pictures/<id:picture_id>/slot")
async def slot(picture_id: int) -> Response:
    async with reading() as conn:
        found = await queries.slot(conn, picture_id)
    if found is None:
        abort(404, "This picture does not exist.")
    response = await html("_picture.html", picture=found)
    response.headers["Cache-Control"] = "no-store"
    return response
