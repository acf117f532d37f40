"""Sign-up, log-in, log-out and settings (the picture on the settings page: avatars/routes.py)."""

from __future__ import annotations

from quart import Blueprint, Response, redirect, request

from microblog.users import queries
from microblog.users.forms import USERNAME, Credentials, PasswordChange, Profile
from microblog.users.passwords import hash_password, needs_rehash, verify_password
from microblog.users.sessions import current_user, log_in, log_out, login_required, refresh_epoch
from microblog.web.db import connection, transaction
from microblog.web.forms import local_path
from microblog.web.htmx import html
from microblog.web.ratelimits import (
    LOGIN_IP,
    LOGIN_USER,
    LOGIN_USER_IP,
    SIGNUP_IP,
    limited,
    spending,
)

blueprint = Blueprint("users", __name__)

LOGIN_FAILED = "Wrong username or password."


@blueprint.route("/signup", methods=["GET", "POST"])
async def signup() -> Response:
    if request.method == "GET":
        return await html("signup.html", form=Credentials("", ""))
    form = Credentials.parse(await request.form, new_account=True)
    if form.errors:
        return await html("signup.html", 422, form=form)
    async with spending(SIGNUP_IP) as slot:  # an account of those this address may make
        password_hash = await hash_password(form.password)
        async with transaction() as conn:
            user = await queries.create_user(conn, form.username, password_hash)
        if user is None:
            slot.give_back()
    if user is None:
        form.errors["username"] = "That username is taken."
        return await html("signup.html", 422, form=form)
    await log_in(user)
    return redirect("/", 303)


@blueprint.route("/login", methods=["GET", "POST"])
@limited(LOGIN_IP, LOGIN_USER_IP, LOGIN_USER)
async def login() -> Response:
    if request.method == "GET":
        next_path = local_path(request.args.get("next"))
        return await html("login.html", form=Credentials("", ""), next=next_path)
    data = await request.form
    next_path = local_path(data.get("next"))
    form = Credentials.parse(data, new_account=False)
    if form.errors:
        return await html("login.html", 422, form=form, next=next_path)
    found = None
    if USERNAME.match(form.username):
        async with connection() as conn:
            found = await queries.password_hash_by_username(conn, form.username)
    user, password_hash = found if found else (None, None)
    # Verified whether or not the name exists (against a dummy hash when it does not), so
    # the answer takes as long either way and its timing tells nobody which names are taken.
    correct = await verify_password(password_hash, form.password)
    if user is None or not correct:
        form.errors["form"] = LOGIN_FAILED
        return await html("login.html", 422, form=form, next=next_path)
    if needs_rehash(password_hash):
        async with transaction() as conn:
            await queries.rehash_password(conn, user.id, await hash_password(form.password))
    await log_in(user)
    return redirect(next_path, 303)


@blueprint.route("/logout", methods=["GET", "POST"])
async def logout() -> Response:
    if request.method == "GET":  # a typed or bookmarked address: ask, as logging out is a POST
        return await html("logout.html")
    await log_out()
    return redirect("/", 303)


async def settings_page(status: int = 200, **forms: object) -> Response:
    """The settings page, with the forms not given filled from the current user."""
    user = current_user()
    forms.setdefault("profile", Profile(display_name=user.display_name, bio=user.bio))
    forms.setdefault("change", PasswordChange("", ""))
    return await html("settings.html", status, **forms)


@blueprint.route("/settings", methods=["GET", "POST"])
@login_required
async def settings() -> Response:
    user = current_user()
    if request.method == "GET":
        return await settings_page()
    profile = Profile.parse(await request.form)
    if profile.errors:
        return await settings_page(422, profile=profile)
    async with transaction() as conn:
        await queries.update_profile(conn, user.id, profile.display_name, profile.bio)
    return redirect("/settings?saved=profile", 303)


@blueprint.route("/settings/password", methods=["POST"])
@login_required
async def change_password() -> Response:
    user = current_user()
    change = PasswordChange.parse(await request.form)
    if not change.errors:
        async with connection() as conn:
            current_hash = await queries.password_hash_by_id(conn, user.id)
        if not await verify_password(current_hash, change.current):
            change.errors["current_password"] = "That is not your current password."
    if change.errors:
        return await settings_page(422, change=change)
    new_hash = await hash_password(change.new)
    async with transaction() as conn:
        updated = await queries.set_password(conn, user.id, new_hash)
    refresh_epoch(updated)
    return redirect("/settings?saved=password", 303)
