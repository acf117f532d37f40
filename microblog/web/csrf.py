"""CSRF protection: a per-session token that every state-changing request must carry.

Forms send it as the csrf_token field, htmx as the X-CSRF-Token header (set once on <body>).
Anything but GET, HEAD and OPTIONS without the right token is refused with 403 before the
view runs, whichever blueprint the route belongs to.

Logging out takes the token with the session, but pages of that session may still be open in
other tabs. Their token is remembered in the logged-out cookie, so what they send next is
refused as coming from a session that ended (the visitor is offered to log in again) rather
than as a forgery. It is refused all the same: only the message differs, and only a page
this browser was shown can carry that token.
"""

from __future__ import annotations

import hmac
import secrets

from quart import abort, request, session

SESSION_KEY = "csrf"
ENDED_SESSION_KEY = "csrf_of_ended_session"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """This session's token, created on first use (templates call it for every form)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


class SessionEnded(Exception):
    """A request from a page of this browser's session that has since been logged out."""


def end_session() -> None:
    """Clear the session, remembering its token as the one of a session that ended."""
    token = session.get(SESSION_KEY)
    session.clear()
    if isinstance(token, str):
        session[ENDED_SESSION_KEY] = token


def _matches(sent: str, expected: object) -> bool:
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


async def protect() -> None:
    if request.method in SAFE_METHODS:
        return
    expected = session.get(SESSION_KEY)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form
        sent = form.get(FORM_FIELD)
    if sent and _matches(sent, expected):
        return
    if sent and _matches(sent, session.get(ENDED_SESSION_KEY)):
        raise SessionEnded
    abort(
        403,
        "This form has expired or did not come from this site. Reload the page and try again.",
    )
