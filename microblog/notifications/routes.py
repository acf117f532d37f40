"""GET /notifications: newest first, keyset-paged, marked read once shown."""

from __future__ import annotations

from quart import Blueprint, Response

from microblog.notifications import queries
from microblog.users.sessions import current_user, login_required
from microblog.web.db import transaction
from microblog.web.htmx import render
from microblog.web.pagination import keyset_page, remember_place

blueprint = Blueprint("notifications", __name__)
blueprint.after_request(remember_place)  # infinite scroll: Back comes back to the same place


@blueprint.route("/notifications")
@login_required
async def index() -> Response:
    user = current_user()
    async with transaction() as conn:
        page = await keyset_page(lambda before, limit: queries.page(conn, user.id, before, limit))
        if page.rows:
            await queries.mark_read(conn, user.id, page.rows[0].id)
    response = await render(
        "notifications.html",
        "_notifications.html",
        notifications=page.rows,
        next_before=page.rows[-1].id if page.more else None,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
