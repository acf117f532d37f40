"""GET /events: the logged-in reader's live updates, as server-sent events (live/hub.py).

The page a reader has open says what its stream is for: `home=1` on the home timeline, and
`thread=<post id>` on a thread's page; every stream carries the reader's unread count. It
resumes after `Last-Event-ID` (sent by the browser when it reconnects) or `since=` (the
position the page was rendered at, or the last id a script saw), replaying what was missed.
"""

from __future__ import annotations

import asyncpg
from quart import Blueprint, Response, abort, g, request

from microblog.blocks.queries import hidden_ids
from microblog.follows.queries import followee_ids
from microblog.live.stream import Stream
from microblog.users.sessions import current_user
from microblog.web.converters import parse_id
from microblog.web.state import state

blueprint = Blueprint("live", __name__)

EVENT_STREAM = "text/event-stream"
# What a browser's EventSource gets when the session has ended: an event that says so, which
# the page's script answers by closing the stream for good (an error status would only make
# it try again, and say so in the console).
SIGNED_OUT = b"event: signed-out\ndata: {}\n\n"


@blueprint.before_app_request
async def note_position() -> None:
    """Where the live events stand as a request starts, before it reads anything: the stream
    of a page it renders replays from there, so nothing written meanwhile goes missing."""
    g.live_since = state().live.position


@blueprint.app_template_global()
def live_since() -> int | None:
    """The position a page's stream starts from; None while this process has none yet."""
    return g.get("live_since")


@blueprint.route("/events")
async def events() -> Response:
    user = current_user()
    if user is None:
        if EVENT_STREAM in request.headers.get("Accept", ""):
            return _event_stream(SIGNED_OUT)
        abort(401, "Log in to receive live updates.")
    live = state().live
    if state().draining.is_set() or live.position is None:
        abort(503, "Live updates are not available from this instance right now.")
    stream = Stream(
        user.id,
        since=_event_id(request.headers.get("Last-Event-ID") or request.args.get("since")),
        home=request.args.get("home") == "1",
        thread=_thread(),
    )

    async def following(conn: asyncpg.Connection) -> tuple[set[int], set[int]]:
        return await followee_ids(conn, user.id), await hidden_ids(conn, user.id)

    return _event_stream(live.stream(stream, following))


def _event_stream(body) -> Response:
    response = Response(body, content_type=EVENT_STREAM)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx passes each message on at once
    response.timeout = None  # a stream lasts as long as the reader stays
    return response


def _event_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if raw == "0":
        return 0
    value = parse_id(raw)
    if value is None:
        abort(400, "The last event id must be a whole number.")
    return value


def _thread() -> int | None:
    raw = request.args.get("thread")
    if raw is None:
        return None
    value = parse_id(raw)
    if value is None:
        abort(400, "The thread must be the id of a post.")
    return value
