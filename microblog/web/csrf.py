"""CSRF protection: a per-session token that every state-changing request must carry.

Forms send it as the csrf_token field, htmx as the X-CSRF-Token header (set once on <body>).
Anything but GET, HEAD and OPTIONS without the right token is refused with 403 before the
view runs, whichever blueprint the route belongs to.
"""

from __future__ import annotations

import hmac
import secrets

from quart import abort, request, session

SESSION_KEY = "csrf"
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


async def protect() -> None:
    if request.method in SAFE_METHODS:
        return
    expected = session.get(SESSION_KEY)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form
        sent = form.get(FORM_FIELD)
    if (
        not isinstance(expected, str)
        or not sent
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        abort(
            403,
            "This form has expired or did not come from this site. Reload the page and try again.",
        )
