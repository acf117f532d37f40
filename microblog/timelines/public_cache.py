"""The public timeline's first page for anonymous visitors, rendered once for everyone.

Every anonymous visitor of / and /public sees the same first page, so its HTML is cached.
After the commit of any change it shows (SHOWS), one version counter is bumped; the cached page
is only used while that counter is unchanged, so the next request to any instance sees the
write. The TTL only bounds the
staleness of relative times, and of the page if a bump was lost to a cache outage.
"""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup

from microblog.avatars.queries import AVATARS
from microblog.cache.store import Cache
from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.transactions import Duty
from microblog.post_pictures.queries import PICTURES
from microblog.posts.queries import LIKES, POSTS
from microblog.reposts.queries import REPOSTS
from microblog.users.queries import PROFILES
from microblog.web.htmx import render_template
from microblog.web.state import state

PAGE_KEY = "public-timeline:first-page"
VERSION_KEY = "version:public-timeline"
TTL = 30.0
# Everything the page shows that a write can change.
SHOWS = (POSTS, LIKES, REPOSTS, PROFILES, AVATARS, PICTURES)

log = logging.getLogger(__name__)


async def first_page(compute_page) -> dict[str, Any] | None:
    """{"timeline_html", "empty"} from the cache or freshly rendered; None with the cache off."""
    cache = state().cache
    if cache is None:
        return None

    async def render() -> dict[str, Any]:
        page = await compute_page()
        html = render_template("_timeline.html", **page)
        return {"timeline_html": html, "empty": page["empty"]}

    # Known by the version of the code that draws it, as cards are (microblog/posts/cards.py).
    key = f"{PAGE_KEY}:{state().card_markup}"
    cached = await cache.fetch(key, TTL, render, version_key=VERSION_KEY)
    # The HTML was rendered, escaped, by our own template; the cache only stored it.
    return {**cached, "timeline_html": Markup(cached["timeline_html"])}  # noqa: S704


def invalidator(cache: Cache) -> Duty:
    """The duty that follows every change in SHOWS: the cached page is stale."""

    async def invalidate_public_page(_changed: frozenset[int]) -> None:
        try:
            await cache.increment(VERSION_KEY)
        except DATABASE_OUTAGE as error:
            log.warning("public timeline version not bumped", extra={"error": type(error).__name__})

    return invalidate_public_page
