"""Post cards: the HTML of a post as timelines and threads show it, cached for every viewer it
looks the same to.

A card is known by everything it shows: the post's text, pictures (and whether each is
ready), counts and author, its relative time ("5m"), whether the viewer is logged in, has
liked it, reposted it or wrote it, which accounts it mentions, and in a timeline who reposted
it (and whether that was the viewer). Any change to any of these is another card, so a cached
card is never stale; old cards simply expire. The hidden fields every form carries (the
session's CSRF token, the page to come back to) differ per viewer and page: cards hold a
placeholder for them, filled in when the page is put together.

Because a card can never be stale, each process keeps the cards it used lately in memory,
and no instance needs to hear of another's writes. Only cards missing there are looked up in
the shared cache (one round trip for the page), and only those missing there too are
rendered, then shared with every instance. Shared cards are also known by the version of the
code that draws them, so during a rolling deploy old and new instances never swap cards.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup

from microblog.cache.recent import Recent
from microblog.cache.store import Cache
from microblog.posts import render
from microblog.posts.queries import PostView
from microblog.users.queries import User
from microblog.web.state import state
from microblog.web.templating import (
    PLACEHOLDER_FORMS,
    Pieces,
    in_pieces,
    relative_time,
    with_page_forms,
)

CARD_TTL = 600.0
# Characters of card HTML each process keeps: some ten thousand cards.
LOCAL_CARD_CHARACTERS = 16 * 1024 * 1024

# What draws a card: its templates and the code that turns a post's text into HTML; and
# _timeline.html, which puts cards together into the public timeline's shared first page.
CARD_TEMPLATES = ("post_macros.html", "macros.html", "_timeline.html")

Shown = tuple  # everything a card shows: its identity in both caches


def _characters(pieces: Pieces) -> int:
    return sum(map(len, pieces))


def local_cards() -> Recent[Shown, Pieces]:
    """Where a process keeps the cards it drew lately, cut where the page's form fields go."""
    return Recent(LOCAL_CARD_CHARACTERS, sizeof=_characters)


def markup_version(templates: Environment) -> str:
    """A digest of everything that draws a card, so a deploy that changes them changes the
    shared cache's keys."""
    digest = hashlib.blake2b(digest_size=6)
    for name in CARD_TEMPLATES:
        digest.update(templates.loader.get_source(templates, name)[0].encode())
    digest.update(Path(render.__file__).read_bytes())
    return digest.hexdigest()


def _shown(post: PostView, viewer: User | None, shown_time: str, variant: str) -> Shown:
    return (
        post.id, post.author_username, post.author_display_name, post.author_avatar,
        post.body, post.in_reply_to, post.reply_count, post.like_count, post.repost_count,
        post.created_at.timestamp(), shown_time,
        viewer is not None, post.liked, post.reposted,
        viewer is not None and viewer.id == post.author_id,
        variant, tuple(post.mentioned), post.reposter_username, post.reposter_display_name,
        viewer is not None and viewer.username == post.reposter_username,
        tuple(map(tuple, post.pictures)) if post.pictures else (),
    )  # fmt: skip


def _shared_key(shown: Shown, markup: str) -> str:
    digest = hashlib.blake2b("\x1f".join(map(str, shown)).encode(), digest_size=16).hexdigest()
    return f"post-card:{shown[0]}:{markup}:{digest}"


async def render_cards(
    posts: list[PostView],
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
    shown = [_shown(post, viewer, relative_time(post.created_at, now), variant) for post in posts]
    app = state()
    cache = app.cache
    local = app.local_cards if cache else {}
    # One lookup of each card's key: hashing a key of twenty fields is most of a hit's cost.
    cards = [local.get(key) for key in shown]
    lacking = {
        key: post for key, post, card in zip(shown, posts, cards, strict=True) if card is None
    }
    if cache:  # without the cache, there is no memory of cards to count
        app.card_stats.hits += len(cards) - len(lacking)
        app.card_stats.misses += len(lacking)
        app.card_stats.writes += len(lacking)  # each is kept once found or drawn
    if lacking:
        found = await _shared_or_rendered(cache, lacking, viewer, focus, in_thread)
        pieces = {key: in_pieces(html) for key, html in found.items()}
        local.update(pieces)
        cards = [card or pieces[key] for key, card in zip(shown, cards, strict=True)]
    return with_page_forms(cards)


async def _shared_or_rendered(
    cache: Cache | None,
    lacking: dict[Shown, PostView],
    viewer: User | None,
    focus: bool,
    in_thread: bool,
) -> dict[Shown, str]:
    """The cards this process lacks: from the shared cache, or rendered and then shared."""
    markup = state().card_markup
    keys = {shown: _shared_key(shown, markup) for shown in lacking}
    shared = await cache.get_many(keys.values()) if cache else {}
    card = state().templates.get_template("post_macros.html").module.post_card
    found, rendered = {}, {}
    for shown, post in lacking.items():
        html = shared.get(keys[shown])
        if html is None:
            body = render.render_body(post.body, set(post.mentioned))
            html = rendered[keys[shown]] = str(
                card(post, body, viewer, PLACEHOLDER_FORMS, focus=focus, in_thread=in_thread)
            )
        found[shown] = html
    if cache:
        await cache.set_many(rendered, CARD_TTL)
    return found
