"""GET /notifications: newest first, keyset-paged, marked read once shown."""

from __future__ import annotations

from quart import Blueprint, Response

from microblog.notifications import queries
from microblog.web.db import transaction
from microblog.web.htmx import render
from microblog.web.pagination import PAGE_SIZE, cursor
from microblog.web.sessions import current_user, login_required

blueprint = Blueprint("notifications", __name__)


@blueprint.route("/notifications")
@login_required
async def index() -> Response:
    user = current_user()
    async with transaction() as conn:
        items = await queries.page(conn, user.id, cursor("before"), PAGE_SIZE + 1)
        more = len(items) > PAGE_SIZE
        items = items[:PAGE_SIZE]
        if items:
            await queries.mark_read(conn, user.id, items[0].id)
    response = await render(
        "notifications.html",
        "_notifications.html",
        notifications=items,
        next_before=items[-1].id if more else None,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
