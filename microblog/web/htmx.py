"""HTML responses, htmx-aware: an htmx request gets a fragment, a plain request the whole page."""

from __future__ import annotations

from typing import Any

from quart import Response, current_app, request


async def render_template(name: str, **context: Any) -> str:
    """Quart's render_template, rendered synchronously.

    Quart compiles templates for async rendering, where every piece of output passes through
    an awaitable: a timeline page took over 20 ms of CPU that way. Nothing in our templates
    awaits, so a synchronous overlay of the same environment (same loader, filters, globals
    and context) renders the same HTML several times faster.
    """
    await current_app.update_template_context(context)
    return current_app.extensions["templates"].get_template(name).render(context)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


async def html(template: str, status: int = 200, **context: Any) -> Response:
    response = Response(
        await render_template(template, **context),
        status=status,
        content_type="text/html; charset=utf-8",
    )
    # Caches must not hand a fragment to a browser that asked for the page, or the reverse.
    response.vary.add("HX-Request")
    return response


async def render(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """The fragment for htmx and the page otherwise; the page includes the fragment."""
    return await html(fragment if is_htmx() else page, status, **context)
