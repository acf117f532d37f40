"""Friendly error pages: a whole page for browsers, a fragment for htmx, never a stack trace.

A database that does not answer is an outage, not a bug: the visitor gets a 503 page and the
pool reconnects by itself once PostgreSQL is back.
"""

from __future__ import annotations

import logging

from quart import Quart, Response
from quart_rate_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException, InternalServerError

from microblog.db.outage import DATABASE_OUTAGE, is_outage
from microblog.web.htmx import is_htmx, render

log = logging.getLogger(__name__)

TITLES = {
    400: ("Bad request", "The request could not be understood."),
    401: (
        "Logged out",
        "Your session has ended: you logged out, or changed your password, somewhere else.",
    ),
    403: ("Forbidden", "You are not allowed to do that."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    413: ("Too large", "What you sent is larger than this site accepts."),
    422: ("Check your input", "Some of what you sent is not valid."),
    429: ("Slow down", "Too many requests. Wait a moment and try again."),
    500: ("Something went wrong", "An unexpected error happened. It has been logged."),
    503: (
        "Temporarily unavailable",
        "The site cannot reach its database right now. Try again in a few seconds.",
    ),
}


async def error_response(
    status: int, message: str | None = None, *, login_url: str | None = None
) -> Response:
    """The error page, or for htmx its fragment; `login_url` adds a link to log in again."""
    title, default_message = TITLES.get(status, TITLES[500])
    response = await render(
        "error.html",
        "_error.html",
        status,
        code=status,
        title=title,
        message=message or default_message,
        login_url=login_url,
    )
    if is_htmx():
        # Errors land in the page's message area, whatever the element that asked.
        response.headers["HX-Retarget"] = "#messages"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


async def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    custom = error.description if error.description != type(error).description else None
    if isinstance(error, RateLimitExceeded):
        custom = f"Too many requests. Try again in {_seconds(error.retry_after)}."
    response = await error_response(status, custom if status != 500 else None)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _seconds(count: int) -> str:
    return "a second" if count <= 1 else f"{count} seconds"


async def _internal_error(error: InternalServerError) -> Response:
    original = error.original_exception or error
    if is_outage(original):
        return await _database_outage(original)
    return await error_response(500)  # Quart has already logged the traceback


async def _database_outage(error: BaseException) -> Response:
    log.warning("database unavailable", extra={"error": f"{type(error).__name__}: {error}"})
    response = await error_response(503)
    response.headers["Retry-After"] = "5"
    return response


def register_error_handlers(app: Quart) -> None:
    app.register_error_handler(InternalServerError, _internal_error)
    app.register_error_handler(HTTPException, _http_error)
    for outage in DATABASE_OUTAGE:
        app.register_error_handler(outage, _database_outage)
