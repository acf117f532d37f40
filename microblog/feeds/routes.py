"""GET /@<username>/feed.atom and /tags/<tag>/feed.atom: Atom feeds, with ETag and
Last-Modified, answering 304 to a reader whose copy is still current."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from quart import Blueprint, Response, abort, request

from microblog.feeds import cached
from microblog.feeds.atom import Feed, atom
from microblog.feeds.queries import FEED_SIZE, authored
from microblog.posts.queries import PostView
from microblog.posts.render import tag_key
from microblog.timelines.queries import tagged
from microblog.users.queries import user_by_username
from microblog.web.db import connection, reading
from microblog.web.state import state

blueprint = Blueprint("feeds", __name__)

Build = Callable[[str], Awaitable[tuple[Feed, Sequence[PostView]] | None]]


def _read():
    """Where a feed is read from. A cached feed is shared with every reader until the next
    write, so it is drawn from the primary, as the public page is: from a replica behind that
    write it would stay stale for the cache's TTL. Uncached (CACHE=off), from a replica."""
    return connection() if state().cache is not None else reading()


def _origin() -> str:
    """PUBLIC_ORIGIN, or the address this request came to."""
    return state().settings.public_origin or request.host_url.rstrip("/")


async def _answer(key: str, build: Build, missing: str) -> Response:
    origin = _origin()

    async def compute() -> cached.Document:
        built = await build(origin)
        if built is None:
            return {"xml": None}
        feed, posts = built
        return cached.document(atom(feed, posts, origin), feed.updated.isoformat())

    document = await cached.feed(f"{key}:{origin}", compute)
    if document["xml"] is None:
        abort(404, missing)
    updated = datetime.fromisoformat(document["updated"]).replace(microsecond=0)
    if request.if_none_match:
        # Weak comparison (RFC 9110): a proxy that compresses the feed marks its ETag weak.
        current = request.if_none_match.contains_weak(document["etag"])
    else:
        since = request.if_modified_since
        current = since is not None and updated <= since
    response = Response("" if current else document["xml"], status=304 if current else 200)
    response.content_type = "application/atom+xml; charset=utf-8"
    response.set_etag(document["etag"])
    response.last_modified = updated
    # Readers may keep it a minute, then ask again with If-None-Match.
    response.cache_control.public = True
    response.cache_control.max_age = 60
    return response


@blueprint.route("/@<username:username>/feed.atom")
async def user_feed(username: str) -> Response:
    async def build(origin: str):
        async with _read() as conn:
            user = await user_by_username(conn, username)
            if user is None:
                return None
            posts = await authored(conn, user.id, FEED_SIZE)
        updated = posts[0].created_at if posts else user.created_at
        title = f"{user.name} (@{user.username})"
        page = f"/@{user.username}"
        return Feed(path=f"{page}/feed.atom", page=page, title=title, updated=updated), posts

    return await _answer(
        f"user:{username.lower()}", build, f"There is no one called @{username} here."
    )


@blueprint.route("/tags/<tag>/feed.atom")
async def tag_feed(tag: str) -> Response:
    key = tag_key(tag)
    if key is None:
        abort(404, "That is not a hashtag.")

    async def build(origin: str):
        async with _read() as conn:
            posts = await tagged(conn, key, None, None, FEED_SIZE)
        if not posts:
            return None
        page = f"/tags/{key}"
        feed = Feed(
            path=f"{page}/feed.atom", page=page, title=f"#{key}", updated=posts[0].created_at
        )
        return feed, posts

    return await _answer(f"tag:{key}", build, f"No posts with #{key} yet.")
