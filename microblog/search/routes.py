"""GET /search?q=: posts and people. An empty q shows the form; a q too long gets 422."""

from __future__ import annotations

from urllib.parse import urlencode

from quart import Blueprint, Response, abort, request

from microblog.posts.cards import render_cards
from microblog.search import queries
from microblog.search.parse import MAX_QUERY_LENGTH, parse
from microblog.users.bios import linked_bios
from microblog.users.sessions import current_user
from microblog.web.converters import parse_id
from microblog.web.db import reading
from microblog.web.htmx import render
from microblog.web.pagination import PAGE_SIZE, page_of

blueprint = Blueprint("search", __name__)

# Pages of posts a search shows: its CANDIDATES, PAGE_SIZE at a time.
MAX_PAGE = queries.CANDIDATES // PAGE_SIZE


def _page() -> int:
    raw = request.args.get("page", "")
    if raw == "":
        return 1
    page = parse_id(raw)
    if page is None or page > MAX_PAGE:
        abort(400, f"The page must be a whole number from 1 to {MAX_PAGE}.")
    return page


@blueprint.route("/search")
async def search() -> Response:
    text = request.args.get("q", "")
    page = _page()
    if len(text) > MAX_QUERY_LENGTH:
        return await render(
            "search.html",
            "_search_results.html",
            status=422,
            q=text[:MAX_QUERY_LENGTH],
            error=f"A search can be at most {MAX_QUERY_LENGTH} characters long.",
        )
    query = parse(text.strip())
    if not query.finds_posts:
        return await render("search.html", "_search_results.html", q=text)
    viewer = current_user()
    viewer_id = viewer.id if viewer else None
    async with reading() as conn:
        people = (
            await queries.people(conn, query.name, viewer_id) if query.name and page == 1 else []
        )
        offset = (page - 1) * PAGE_SIZE
        found = page_of(
            await queries.posts(conn, query, viewer_id, offset, PAGE_SIZE + 1), PAGE_SIZE
        )
        bios = await linked_bios(conn, people)
    more = found.more and page < MAX_PAGE
    return await render(
        "search.html",
        "_search_results.html",
        q=text,
        searched=True,
        people=people,
        bios=bios,
        cards=await render_cards(found.rows, viewer),
        empty=not found.rows and not people,
        next_page=urlencode({"q": text, "page": page + 1}) if more else None,
    )
