"""Keyset pagination: pages are addressed by the id of the last item seen, never an OFFSET.

Infinite scroll fetches each next page with htmx and adds it to the page. So that the browser's
Back button brings a reader back to the same place, each such answer also rewrites the page's
address (HX-Replace-Url, no new history entry) to one that, loaded whole, shows every page the
reader has scrolled through: `?pages=N` asks for N pages at once, from `?before=` if given.
Browsers restore the scroll position of the page they return to; what is above the reader is
the same posts again, so the position is the same place. htmx's own history cache stays off
(base.html says why).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from quart import Response, abort, request

from microblog.web.converters import parse_id
from microblog.web.forms import site_path

Row = TypeVar("Row")

PAGE_SIZE = 20
# A page loaded whole shows at most this many pages (400 posts); a reader who scrolled further
# comes back to the last of them.
MAX_PAGES = 20


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: list[Row]
    more: bool  # whether rows follow these


def cursor(name: str) -> int | None:
    """The ?name= cursor: None when absent, 400 when it is not a post id."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = parse_id(raw)
    if value is None:
        abort(400, f"The page cursor '{name}' must be a positive whole number.")
    return value


def pages() -> int:
    """How many pages to show at once (?pages=, 1 by default, at most MAX_PAGES)."""
    raw = request.args.get("pages", "")
    if raw == "":
        return 1
    value = parse_id(raw)
    if value is None:
        abort(400, "The number of pages must be a positive whole number.")
    return min(value, MAX_PAGES)


def page_of(rows: list[Row], size: int) -> Page[Row]:
    """A page of `size` rows from rows fetched with a limit of size + 1: one row more than
    the page, so that whether it came says whether more follow, without counting."""
    return Page(rows[:size], len(rows) > size)


async def keyset_page(fetch: Callable[[int | None, int], Awaitable[list[Row]]]) -> Page[Row]:
    """The rows this request shows, from `fetch(before, limit)`."""
    shown = PAGE_SIZE * pages()
    return page_of(await fetch(cursor("before"), shown + 1), shown)


async def remember_place(response: Response) -> Response:
    """After htmx's request for the next page (an after_request hook of the blueprints that
    page this way): the page's address becomes one that shows all the page shows now."""
    # The header last: werkzeug looks up a missing one by raising and catching an exception,
    # and most pages come without it.
    if response.status_code != 200 or not parse_id(request.args.get("before")):
        return response
    current = site_path(request.headers.get("HX-Current-URL"))
    if current is None:
        return response
    page = urlsplit(current)
    query = dict(parse_qsl(page.query))
    start = {"before": query["before"]} if "before" in query else {}
    count = parse_id(query.get("pages")) or 1
    response.headers["HX-Replace-Url"] = f"{page.path}?{urlencode({**start, 'pages': count + 1})}"
    return response
