"""HTML responses, htmx-aware: an htmx request gets a fragment, a plain request the whole page."""

from __future__ import annotations

from typing import Any

from quart import Response, g, request

from microblog.web.state import state


def render_template(name: str, **context: Any) -> str:
    """Render a template of the app with the request and the viewer in its context.

    Not Quart's render_template, for two costs measured on every page: Quart compiles
    templates for async rendering, where each piece of output passes through an awaitable
    (nothing in our templates awaits, so a synchronous overlay of the same environment renders
    the same HTML faster); and it runs the template context processors, among them the plain
    function Flask's blueprints register, which Quart hands to a worker thread on every render.
    The templates need only `request` and `current_user` from a context.
    """
    context.setdefault("request", request)
    context.setdefault("current_user", g.get("user"))
    return state().templates.get_template(name).render(context)


def is_htmx() -> bool:
    # getlist, not get: werkzeug's get raises and catches an exception for a missing header,
    # and most requests are not htmx's; several parts of a page ask.
    return request.headers.getlist("HX-Request") == ["true"]


async def html(template: str, status: int = 200, **context: Any) -> Response:
    response = Response(
        render_template(template, **context),
        status=status,
        content_type="text/html; charset=utf-8",
    )
    # Caches must not hand a fragment to a browser that asked for the page, or the reverse.
    response.headers["Vary"] = "HX-Request"
    return response


async def render(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """The fragment for htmx and the page otherwise; the page includes the fragment."""
    return await html(fragment if is_htmx() else page, status, **context)
