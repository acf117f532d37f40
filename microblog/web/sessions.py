"""Who is logged in: signed-cookie sessions that any instance can read.

The cookie holds the user id and the user's session epoch. A password change bumps the epoch,
so every other session of that user stops being honoured on its next request, on any instance
(users/known.py says how soon another instance hears of it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from cachetools import LRUCache
from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart, Response, current_app, g, redirect, request, session, url_for
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart.wrappers import BaseRequestWebsocket

from microblog.config import Settings
from microblog.db.transactions import Transactions
from microblog.users.known import KnownUsers
from microblog.users.queries import User, user_by_id
from microblog.web.csrf import SessionEnded, csrf_token, end_session
from microblog.web.db import connection
from microblog.web.errors import error_response
from microblog.web.forms import referrer_path
from microblog.web.htmx import is_htmx
from microblog.web.templating import here

SECRET_FILE = "secret_key"
# Session cookies each process remembers as verified: some megabytes.
VERIFIED_COOKIES = 10_000
USER_ID = "user_id"
EPOCH = "epoch"

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


def signing_keys(settings: Settings) -> tuple[str, list[str]]:
    """The current session key and the earlier ones still accepted."""
    key = settings.secret_key_base or development_secret(settings.data_dir)
    return key, list(settings.secret_key_fallbacks)


class CookieSessions(SecureCookieSessionInterface):
    """Quart's signed-cookie sessions, with each cookie verified once per process.

    A browser sends the same cookie with every request, and checking its signature and
    decoding it again each time cost a twentieth of a page's CPU. A cookie that verified once
    verifies again (the keys do not change while the app runs), so each process remembers what
    the cookies it saw lately hold and when they were signed; only their age is checked again,
    as itsdangerous checks it.
    """

    def __init__(self) -> None:
        self._serializer: URLSafeTimedSerializer | None = None
        self._verified: LRUCache[str, tuple[dict[str, Any], int]] = LRUCache(VERIFIED_COOKIES)

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        # Quart builds one for every request, though the keys cannot change.
        if self._serializer is None:
            self._serializer = super().get_signing_serializer(app)
        return self._serializer

    async def open_session(
        self, app: Quart, request: BaseRequestWebsocket
    ) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie is None:
            return self.session_class()
        verified = self._verified.get(cookie)
        if verified is None:
            try:
                data, signed = serializer.loads(cookie, return_timestamp=True)
            except BadSignature:
                return self.session_class()
            verified = self._verified[cookie] = (data, int(signed.timestamp()))
        data, signed_at = verified
        age = int(time.time()) - signed_at
        if not 0 <= age <= app.permanent_session_lifetime.total_seconds():
            return self.session_class()
        return self.session_class(data)  # a copy: the request may change its session


def development_secret(data_dir: Path) -> str:
    """Generated once into the data folder, so every local instance signs alike.

    The key is written to a file of this process's own, readable by its owner only from the
    moment it exists, then linked into place: the first process to link wins, and the others
    read the winner's complete file.
    """
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        candidate = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()


def init_sessions(app: Quart, primary_url: str, transactions: Transactions) -> None:
    """Cookie sessions, the visitor's row on g.user, and the listener that keeps rows current."""
    app.session_interface = CookieSessions()
    known = app.extensions["known_users"] = KnownUsers()

    @app.while_serving
    async def keep_users_current() -> AsyncIterator[None]:
        stop = asyncio.Event()
        listener = asyncio.create_task(known.keep_current(primary_url, stop))
        yield
        stop.set()
        await listener

    app.before_request(load_current_user)
    transactions.on_every_commit(forget_own_changes)
    app.register_error_handler(SessionEnded, to_log_in)


# Health checks and static files never need to know who is asking: no query for them.
ANONYMOUS_BLUEPRINTS = frozenset({"health", "static_files", "avatars"})


def _known_users() -> KnownUsers:
    return current_app.extensions["known_users"]


async def _load_user(user_id: int) -> User | None:
    async with connection() as conn:
        return await user_by_id(conn, user_id)


async def load_current_user() -> None:
    g.user = None
    if request.blueprint in ANONYMOUS_BLUEPRINTS:
        return
    user_id = session.get(USER_ID)
    if user_id is None:
        return
    user = await _known_users().get(user_id, _load_user)
    if user is None or user.session_epoch != session.get(EPOCH):
        session.pop(USER_ID, None)
        session.pop(EPOCH, None)
        return
    g.user = user


async def forget_own_changes() -> None:
    """After a write, which may have changed the writer's own row (a post counts, reading
    notifications clears the unread count, a password bumps the epoch), this process reads
    that row afresh: the writer's next page shows the change without waiting to be told."""
    user = current_user()
    if user is not None:
        _known_users().forget(user.id)


def current_user() -> User | None:
    return g.get("user")


def log_in(user: User) -> None:
    # A fresh session (and so a fresh CSRF token) on every log-in defeats session fixation.
    # The token is made now, so the cookie set here is the one every later page accepts as is.
    session.clear()
    session.permanent = True
    session[USER_ID] = user.id
    session[EPOCH] = user.session_epoch
    csrf_token()
    g.user = user


def log_out() -> None:
    end_session()
    g.user = None


def refresh_epoch(user: User) -> None:
    """Keep this session valid after its own password change bumped the epoch."""
    session[EPOCH] = user.session_epoch
    g.user = user


async def to_log_in(_ended: SessionEnded | None = None) -> Response:
    """The answer to a request that needs a session when there is none (or it has ended)."""
    back = here() if is_htmx() or request.method == "GET" else referrer_path()
    target = url_for("users.login", next=back)
    if is_htmx():
        # The page stays, and with it anything half-written in it; the message area offers to
        # log in again. (A redirect would be followed inside htmx's request and the log-in
        # page swapped into the button that was pressed.)
        return await error_response(401, login_url=target)
    return redirect(target, 303)


def login_required(view: View) -> View:
    @wraps(view)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return await to_log_in()
        return await view(*args, **kwargs)

    return guarded  # type: ignore[return-value]
