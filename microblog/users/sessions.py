"""Who is logged in: the user that the signed session cookie (web/sessions.py) names.

The cookie holds the user id, the session's own id and the user's session epoch. A session is
a row of user_sessions: logging out deletes it, so a copy of the cookie made before is refused
from then on, while the user's other sessions (another browser, a phone) stay. A password
change bumps the epoch, so every other session of that user ends at once. Either way the next
request is refused on any instance (users/known.py says how soon another instance hears of it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from quart import Quart, Response, g, redirect, request, session, url_for

from microblog.db.transactions import Transactions
from microblog.users import queries
from microblog.users.known import KnownUsers
from microblog.users.queries import Account, User
from microblog.web.csrf import SessionEnded, csrf_token, end_session
from microblog.web.db import connection, transaction
from microblog.web.errors import error_response
from microblog.web.forms import referrer_path
from microblog.web.htmx import is_htmx
from microblog.web.sessions import SESSION_LIFETIME
from microblog.web.templating import here

USER_ID = "user_id"
SESSION_ID = "session_id"
EPOCH = "epoch"

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


# Health checks and static files never need to know who is asking: no query for them.
ANONYMOUS_BLUEPRINTS = frozenset({"health", "static_files", "pictures", "post_pictures"})


def init_logins(app: Quart, known: KnownUsers, transactions: Transactions) -> None:
    """The visitor's row on g.user for every request, from `known` while it is current."""

    async def load_current_user() -> None:
        g.user = None
        if request.blueprint in ANONYMOUS_BLUEPRINTS:
            return
        user_id = session.get(USER_ID)
        if user_id is None:
            return
        account = await known.get(user_id, _load_account, _honours_cookie)
        if account is None or not _honours_cookie(account):
            for key in (USER_ID, SESSION_ID, EPOCH):
                session.pop(key, None)
            return
        g.user = account.user

    async def forget_own_changes() -> None:
        """After a write, which may have changed the writer's own row (a post counts, reading
        notifications clears the unread count, a password bumps the epoch, a log-in or a
        log-out changes the sessions), this process reads that row afresh: the writer's next
        page shows the change without waiting to be told."""
        user = current_user()
        if user is not None:
            known.forget(user.id)

    app.before_request(load_current_user)
    transactions.on_every_commit(forget_own_changes)
    app.register_error_handler(SessionEnded, to_log_in)


def _honours_cookie(account: Account) -> bool:
    """The cookie names a live session of the account, from after its last password change."""
    live = session.get(SESSION_ID) in account.sessions
    return live and account.user.session_epoch == session.get(EPOCH)


async def _load_account(user_id: int) -> Account | None:
    async with connection() as conn:
        return await queries.account_by_id(conn, user_id)


def current_user() -> User | None:
    return g.get("user")


async def log_in(user: User) -> None:
    # The user is known before the session's row commits, so that this process forgets the
    # account it may keep and honours the new session on the very next request.
    g.user = user
    async with transaction() as conn:
        session_id = await queries.start_session(conn, user.id, SESSION_LIFETIME)
    # A fresh session (and so a fresh CSRF token) on every log-in defeats session fixation.
    # The token is made now, so the cookie set here is the one every later page accepts as is.
    session.clear()
    session.permanent = True
    session[USER_ID] = user.id
    session[SESSION_ID] = session_id
    session[EPOCH] = user.session_epoch
    csrf_token()


async def log_out() -> None:
    """End this session for good: its row goes, so no copy of the cookie is honoured again."""
    user, session_id = current_user(), session.get(SESSION_ID)
    if user is not None and isinstance(session_id, int):
        async with transaction() as conn:
            await queries.end_session(conn, user.id, session_id)
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
