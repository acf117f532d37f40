"""Post cards: the HTML of a post as timelines and threads show it, cached for every viewer it
looks the same to.

A card's cache key is a digest of everything the card shows: the post's text, counts and
author, its relative time ("5m"), whether the viewer is logged in, has liked it or wrote it,
and which of its @mentions name real accounts. Any change to any of these is a new key, so a
cached card is never stale; old cards simply expire. The hidden fields every form carries
(the session's CSRF token, the page to come back to) differ per viewer and page: cards hold a
placeholder for them, filled in when the page is put together.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
from markupsafe import Markup
from quart import current_app

from microblog.posts.queries import PostView
from microblog.posts.render import mentions, render_body
from microblog.users.queries import User, existing_usernames
from microblog.web.templating import PageForms, page_forms, relative_time

CARD_TTL = 600.0
_FORM_FIELDS = "<!--form-fields-->"
_PLACEHOLDER = PageForms(hidden=Markup("<!--form-fields-->"))


def _key(
    post: PostView, linked: set[str], viewer: User | None, shown_time: str, variant: str
) -> str:
    shown = "\x1f".join(
        map(str, (
            post.id, post.author_username, post.author_display_name, post.author_avatar,
            post.body, post.in_reply_to,
            post.reply_count, post.like_count, post.created_at.timestamp(), shown_time,
            viewer is not None, post.liked, viewer is not None and viewer.id == post.author_id,
            variant, sorted(linked),
        ))
    )  # fmt: skip
    return f"post-card:{post.id}:{hashlib.blake2b(shown.encode(), digest_size=16).hexdigest()}"


async def known_mentions(conn: asyncpg.Connection, posts: list[PostView]) -> set[str]:
    """The @names in these posts that belong to an account: one query, none if nobody is
    mentioned. Ask for it while holding the page's connection; render_cards needs none."""
    names: set[str] = set()
    for post in posts:
        names |= mentions(post.body)
    return await existing_usernames(conn, names)


async def render_cards(
    posts: list[PostView],
    known: set[str],
    viewer: User | None,
    *,
    focus: bool = False,
    in_thread: bool = False,
) -> Markup:
    """The cards of `posts`, in order, ready to place in a page.

    Called with no connection held: the cache takes one of its own, and a request that held
    one while waiting for another could starve a busy pool.
    """
    if not posts:
        return Markup("")
    now = datetime.now(UTC)
    variant = f"focus={focus},in_thread={in_thread}"
    keys = [
        _key(
            post, mentions(post.body) & known, viewer, relative_time(post.created_at, now), variant
        )
        for post in posts
    ]
    settings = current_app.extensions["settings"]
    cache = current_app.extensions["cache"] if settings.cache_enabled else None
    cards = await cache.get_many(keys) if cache else {}
    missing = {}
    card = current_app.extensions["templates"].get_template("post_macros.html").module.post_card
    for key, post in zip(keys, posts, strict=True):
        if key not in cards:
            shown = replace(post, body_html=render_body(post.body, known))
            html = str(card(shown, viewer, _PLACEHOLDER, focus=focus, in_thread=in_thread))
            cards[key] = missing[key] = html
    if cache:
        await cache.set_many(missing, CARD_TTL)
    page = "".join(cards[key] for key in keys)
    # Our own escaped HTML, from the cache or just rendered, with this page's form fields.
    return Markup(page.replace(_FORM_FIELDS, str(page_forms().hidden)))  # noqa: S704
