"""Feeds in the shared cache, rendered once for every reader until the next write they show.

As the public page (timelines/public_cache.py): after the commit of any change a feed shows
(SHOWS), one version counter is bumped and every cached feed stops being used, on every
instance at once. The TTL bounds a feed's age if a bump is lost to a cache outage.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from microblog.cache.store import Cache
from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.transactions import Duty
from microblog.posts.queries import POSTS
from microblog.users.queries import PROFILES
from microblog.web.state import state

VERSION_KEY = "version:feeds"
TTL = 300.0
# What a feed shows that a write can change: posts, and their authors' names.
SHOWS = (POSTS, PROFILES)

log = logging.getLogger(__name__)

# {"xml": the document, "etag": its digest, "updated": ISO date of its newest entry}, or
# {"xml": None} for a feed of no one: a 404 is cached as long as a feed would be.
Document = dict[str, Any]


def document(xml: str, updated: str) -> Document:
    return {"xml": xml, "etag": hashlib.blake2b(xml.encode(), digest_size=12).hexdigest(),
            "updated": updated}  # fmt: skip


async def feed(key: str, compute: Callable[[], Awaitable[Document]]) -> Document:
    """The feed known by `key`, from the cache or from compute(); computed with the cache off."""
    cache = state().cache
    if cache is None:
        return await compute()
    return await cache.fetch(f"feed:{key}", TTL, compute, version_key=VERSION_KEY)


def invalidator(cache: Cache) -> Duty:
    """The duty that follows every change in SHOWS: every cached feed is stale."""

    async def invalidate_feeds(_changed: frozenset[int]) -> None:
        try:
            await cache.increment(VERSION_KEY)
        except DATABASE_OUTAGE as error:
            log.warning("feeds version not bumped", extra={"error": type(error).__name__})

    return invalidate_feeds
