"""Post cards come from this process's memory, then the shared cache, then the templates."""

from __future__ import annotations

from dataclasses import replace

import pytest
from jinja2 import DictLoader, Environment

from microblog.app import create_app
from microblog.db.transactions import without_duties
from microblog.follows.queries import follow
from microblog.posts.cards import CARD_TEMPLATES, markup_version
from microblog.web.state import KEY
from tests.conftest import Browser, app_state, entries, make_post, make_repost, make_user
from tests.test_timelines import post_ids

pytestmark = pytest.mark.both_layouts


async def _posts_two_days_old(db, count: int) -> tuple:
    """A signed-in author's posts, old enough that their "2d" stays put while the test runs."""
    alice = await make_user(db, "alice")
    ids = [await make_post(db, alice, f"post number {n} for @alice") for n in range(count)]
    await db.execute("UPDATE posts SET created_at = now() - interval '2 days'")
    return alice, ids


async def test_a_page_seen_again_takes_its_cards_from_memory_without_a_cache_query(
    app, browser, db
):
    alice, ids = await _posts_two_days_old(db, 3)
    await browser.sign_in(alice)
    stats = app_state(app).cache.stats

    first = await browser.text("/")
    assert (stats.hits, stats.misses, stats.writes) == (0, 3, 3)  # rendered and shared
    again = await browser.text("/")
    assert again == first
    assert (stats.hits, stats.misses, stats.writes) == (0, 3, 3)  # not even looked up

    app_state(app).local_cards.clear()  # as in another instance, or after eviction
    assert await browser.text("/") == first
    assert (stats.hits, stats.misses, stats.writes) == (3, 3, 3)  # from the shared cache
    assert post_ids(first) == ids[::-1]


async def test_a_changed_post_is_a_new_card_on_the_next_view(app, browser, db):
    alice, (post_id,) = await _posts_two_days_old(db, 1)
    await browser.sign_in(alice)
    assert "Like (0 likes)" in await browser.text("/")
    await db.execute("UPDATE posts SET like_count = 7 WHERE id = $1", post_id)
    assert "Like (7 likes)" in await browser.text("/")
    await db.execute("UPDATE users SET display_name = 'Alice A.' WHERE id = $1", alice.id)
    assert '<bdi class="name">Alice A.</bdi>' in await browser.text("/")


async def test_a_repost_is_a_new_card_that_says_who_reposted_to_each_viewer(app, make_browser, db):
    alice, (post_id,) = await _posts_two_days_old(db, 1)
    bob, carol = await make_user(db, "bob"), await make_user(db, "carol")
    async with without_duties(db):
        await follow(db, bob.id, alice.id)
        await follow(db, carol.id, bob.id)
    as_bob, as_carol = make_browser(), make_browser()
    await as_bob.sign_in(bob)
    await as_carol.sign_in(carol)
    assert "Repost (0 reposts)" in await as_bob.text("/")
    await db.execute("UPDATE posts SET repost_count = 4 WHERE id = $1", post_id)
    assert "Repost (4 reposts)" in await as_bob.text("/")
    await make_repost(db, carol, post_id)
    await make_repost(db, bob, post_id)
    bobs, carols = await as_bob.text("/"), await as_carol.text("/")
    # Both reposted it and both see bob's repost, the newest: only the name differs.
    assert "Undo repost (6 reposts)" in bobs
    assert "Undo repost (6 reposts)" in carols
    assert entries(bobs) == [(post_id, "You")]
    assert entries(carols) == [(post_id, "bob")]
    await db.execute("UPDATE users SET display_name = 'Bob B.' WHERE id = $1", bob.id)
    assert entries(await as_carol.text("/")) == [(post_id, "Bob B.")]


async def test_each_viewer_gets_their_own_form_fields_in_shared_cards(app, make_browser, db):
    alice, _ = await _posts_two_days_old(db, 2)
    bob = await make_user(db, "bob")
    pages = []
    for user in (alice, bob, alice):
        viewer = make_browser()
        await viewer.sign_in(user)
        pages.append((await viewer.text("/public"), await viewer.csrf_token()))
    for page, token in pages:
        assert page.count(f'name="csrf_token" value="{token}"') >= 2  # a like form per card
        assert "<!--form-fields-->" not in page
    assert pages[0][0].count("Delete this post?") == 2  # alice may delete her own posts
    assert "Delete this post?" not in pages[1][0]  # bob may not
    assert pages[2][0].count("Delete this post?") == 2


async def test_with_the_cache_off_every_card_is_rendered_and_nothing_is_kept(
    settings, pools, db, cache_db
):
    alice, _ = await _posts_two_days_old(db, 2)
    app = create_app(replace(settings, cache_enabled=False), pools, instance_name="no-cache")
    async with app.test_app():
        browser = Browser(app.test_client())
        await browser.sign_in(alice)
        assert await browser.text("/") == await browser.text("/")
        assert app_state(app).cache is None
        assert len(app_state(app).local_cards) == 0
    assert await cache_db.fetchval("SELECT count(*) FROM infra.cache_entries") == 0


async def test_instances_that_draw_cards_differently_never_share_them(
    settings, pools, db, cache_db
):
    alice, _ = await _posts_two_days_old(db, 2)
    looked_up = []
    for markup in ("old", "new", "new"):  # a rolling deploy: two versions side by side
        app = create_app(settings, pools, instance_name=f"drawing-{markup}")
        app.extensions[KEY] = replace(app_state(app), card_markup=markup)
        async with app.test_app():
            browser = Browser(app.test_client())
            await browser.sign_in(alice)
            await browser.text("/")
            stats = app_state(app).cache.stats
            looked_up.append((stats.hits, stats.misses))
            await Browser(app.test_client()).text("/public")  # the anonymous page, cached whole
    assert looked_up[0] == (0, 2)  # the old version's cards, drawn and shared
    assert looked_up[1] == (0, 2)  # the new version draws its own
    assert looked_up[2] == (2, 0)  # and shares them with its kind
    public_pages = await cache_db.fetch(
        "SELECT key FROM infra.cache_entries WHERE key LIKE 'public-timeline:first-page:%'"
    )
    assert sorted(row["key"].rsplit(":", 1)[1] for row in public_pages) == ["new", "old"]


def test_the_markup_version_follows_every_card_template():
    def version(*sources: str) -> str:
        loader = DictLoader(dict(zip(CARD_TEMPLATES, sources, strict=True)))
        return markup_version(Environment(loader=loader, autoescape=True))

    assert version("a", "b", "c") == version("a", "b", "c")
    changed = {version("a", "b", "c"), version("A", "b", "c"), version("a", "B", "c")}
    assert len(changed | {version("a", "b", "C")}) == 4
