"""Deleting one's own account: GET /settings/delete asks, POST /settings/delete (with the
password) closes the account at once and leaves the erasing to a job."""

from __future__ import annotations

from quart import Blueprint, Response, redirect, request

from microblog.account_deletion.jobs import erase
from microblog.account_deletion.queries import close_account
from microblog.jobs.queue import enqueue
from microblog.users.passwords import verify_password
from microblog.users.queries import password_hash_by_id
from microblog.users.sessions import current_user, login_required
from microblog.web.csrf import end_session
from microblog.web.db import connection, transaction
from microblog.web.htmx import html

blueprint = Blueprint("account_deletion", __name__)

WRONG_PASSWORD = "That is not your password; your account is still here."


@blueprint.route("/settings/delete", methods=["GET", "POST"])
@login_required
async def delete_account() -> Response:
    user = current_user()
    if request.method == "GET":
        return await html("delete_account.html", error=None)
    password = (await request.form).get("password", "")
    async with connection() as conn:
        password_hash = await password_hash_by_id(conn, user.id)
    if not password or not await verify_password(password_hash, password):
        return await html("delete_account.html", 422, error=WRONG_PASSWORD)
    async with transaction() as conn:
        if await close_account(conn, user.id):
            await enqueue(conn, erase, {"user_id": user.id})
    end_session()
    return redirect("/account-deleted", 303)


@blueprint.route("/account-deleted")
async def deleted() -> Response:
    return await html("account_deleted.html")
