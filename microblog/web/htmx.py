"""HTML responses, htmx-aware: an htmx request gets a fragment, a plain request the whole page."""

from __future__ import annotations

from typing import Any

from quart import Response, render_template, request


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
