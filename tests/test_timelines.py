"""Home, public, profile and hashtag timelines: who is on them, in what order, page by page."""

from __future__ import annotations

import re

import pytest

from microblog.db.transactions import without_duties
from microblog.follows.queries import follow, unfollow
from microblog.web.pagination import MAX_PAGES, PAGE_SIZE
from tests.conftest import HTMX, make_post, make_user, post_ids

pytestmark = pytest.mark.both_layouts

GARBAGE_CURSORS = ("abc", "-1", "0", "1.5", "+1", "0x10", "%20", "99999999999999999999")


def older_link(html: str) -> str | None:
    """The "Older posts" link, whole, when the page has one."""
    found = re.search(r'<a class="more"[^>]*>Older posts</a>', html)
    return found[0] if found else None


async def test_home_shows_own_and_followed_posts_newest_first_and_no_one_elses(browser, db):
    alice, bob, carol = [await make_user(db, name) for name in ("alice", "bob", "carol")]
    async with without_duties(db):
        await follow(db, alice.id, bob.id)
    mine = await make_post(db, alice, "mine")
    bobs = await make_post(db, bob, "bob's")
    await make_post(db, carol, "carol's")
    reply = await make_post(db, bob, "bob replies to carol", in_reply_to=bobs)
    await browser.sign_in(alice)
    assert post_ids(await browser.text("/")) == [reply, bobs, mine]
    async with without_duties(db):
        await unfollow(db, alice.id, bob.id)
    assert post_ids(await browser.text("/")) == [mine]


async def test_home_shows_everyones_posts_and_a_welcome_when_logged_out(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    first, second = await make_post(db, alice, "one"), await make_post(db, bob, "two")
    page = await browser.text("/")
    assert post_ids(page) == [second, first]
    assert "Say what is happening." in page
    assert 'id="compose"' not in page


async def test_public_profile_and_tag_pages_show_the_right_posts_newest_first(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    a1 = await make_post(db, alice, "about #Python")
    b1 = await make_post(db, bob, "more #python and #rust")
    a2 = await make_post(db, alice, "no tags, #123 is not one")
    b2 = await make_post(db, bob, "#PYTHON again")
    await browser.sign_in(alice)  # the viewer does not change who is on these pages
    assert post_ids(await browser.text("/public")) == [b2, a2, b1, a1]
    assert post_ids(await browser.text("/@bob")) == [b2, b1]
    assert post_ids(await browser.text("/@ALICE")) == [a2, a1]
    assert post_ids(await browser.text("/tags/python")) == [b2, b1, a1]
    tag_page = await browser.text("/tags/PyThOn")
    assert post_ids(tag_page) == [b2, b1, a1]
    assert '<h1 class="page-title">#python</h1>' in tag_page
    assert post_ids(await browser.text("/tags/rust")) == [b1]
    assert post_ids(await browser.text("/tags/go")) == []


async def test_profile_is_404_for_an_unknown_user_and_tag_page_404_for_a_non_tag(browser, db):
    for path in (
        "/@nobody",
        "/tags/123",
        "/tags/" + "a" * 101,
        "/tags/a--b",
        "/tags/-a",
        "/tags/%00",
    ):
        response = await browser.get(path)
        assert response.status_code == 404, path


async def test_a_tag_of_hyphenated_words_has_its_own_page(browser, db):
    alice = await make_user(db, "alice")
    joined = await make_post(db, alice, "all #Open-Source here")
    await make_post(db, alice, "only #open here")
    page = await browser.text("/tags/open-source")
    assert post_ids(page) == [joined]
    assert '<a class="hashtag" href="/tags/open-source" dir="auto">#Open-Source</a>' in page


async def test_every_timeline_pages_20_posts_at_a_time_with_an_older_posts_link(browser, db):
    alice = await make_user(db, "alice")
    posts = [await make_post(db, alice, f"post {n} #t") for n in range(PAGE_SIZE + 5)]
    newest_first = posts[::-1]
    await browser.sign_in(alice)
    for path in ("/", "/public", "/@alice", "/tags/t"):
        page = await browser.text(path)
        assert post_ids(page) == newest_first[:PAGE_SIZE], path
        cursor = newest_first[PAGE_SIZE - 1]
        assert older_link(page) == (
            f'<a class="more" href="?before={cursor}" hx-get="?before={cursor}" '
            'hx-trigger="revealed" hx-target="this" hx-swap="outerHTML">Older posts</a>'
        ), path
        rest = await browser.text(f"{path}?before={cursor}")
        assert post_ids(rest) == newest_first[PAGE_SIZE:], path
        assert older_link(rest) is None, path


async def test_older_posts_link_is_absent_when_exactly_a_page_is_left(browser, db):
    alice = await make_user(db, "alice")
    posts = [await make_post(db, alice, f"post {n}") for n in range(PAGE_SIZE * 2)]
    page = await browser.text("/public")
    assert older_link(page) is not None
    rest = await browser.text(f"/public?before={posts[PAGE_SIZE]}")
    assert post_ids(rest) == posts[:PAGE_SIZE][::-1]
    assert older_link(rest) is None


async def test_next_page_neither_repeats_nor_skips_when_posts_arrive_in_between(browser, db):
    alice = await make_user(db, "alice")
    posts = [await make_post(db, alice, f"post {n}") for n in range(PAGE_SIZE + 3)]
    first_page = post_ids(await browser.text("/public"))
    await make_post(db, alice, "a newer post")
    cursor = first_page[-1]
    second_page = post_ids(await browser.text(f"/public?before={cursor}"))
    assert first_page + second_page == posts[::-1]


async def test_timelines_answer_htmx_with_the_fragment_and_vary_on_it(browser, db):
    alice = await make_user(db, "alice")
    posts = [await make_post(db, alice, f"post {n} #t") for n in range(PAGE_SIZE + 1)]
    await browser.sign_in(alice)
    for path in ("/", "/public", "/@alice", "/tags/t"):
        page = await browser.get(path)
        fragment = await browser.get(f"{path}?before={posts[1]}", headers=HTMX)
        page_html = await page.get_data(as_text=True)
        fragment_html = await fragment.get_data(as_text=True)
        assert (page.status_code, fragment.status_code) == (200, 200), path
        assert "<html" in page_html, path
        assert "<html" not in fragment_html, path
        assert 'id="timeline"' not in fragment_html, path
        assert post_ids(fragment_html) == [posts[0]], path
        for response in (page, fragment):
            assert "HX-Request" in response.headers["Vary"], path


async def test_garbage_cursors_are_400_not_500(browser, db):
    alice = await make_user(db, "alice")
    post = await make_post(db, alice, "x #t")
    await browser.sign_in(alice)
    paths = ("/", "/public", "/@alice", "/tags/t", "/@alice/followers", f"/posts/{post}")
    for path in paths:
        name = "after" if path.startswith("/posts/") else "before"
        for cursor in GARBAGE_CURSORS:
            response = await browser.get(f"{path}?{name}={cursor}")
            assert response.status_code == 400, (path, cursor)
            page = await response.get_data(as_text=True)
            assert f"The page cursor &#39;{name}&#39; must be a positive whole number." in page


async def test_largest_and_empty_cursors_are_accepted(browser, db):
    alice = await make_user(db, "alice")
    post = await make_post(db, alice, "x")
    for query in ("?before=9223372036854775807", "?before=", ""):
        assert post_ids(await browser.text(f"/public{query}")) == [post], query
    assert (await browser.get("/public?before=9223372036854775808")).status_code == 400


async def test_each_next_page_rewrites_the_address_to_one_that_shows_every_page_so_far(browser, db):
    """So Back, after opening a post from far down, returns to the same posts."""
    alice = await make_user(db, "alice")
    posts = [await make_post(db, alice, f"post {n} #t") for n in range(PAGE_SIZE * 3 + 2)]
    newest_first = posts[::-1]
    await browser.sign_in(alice)
    for path in ("/", "/public", "/@alice", "/tags/t"):
        shown = post_ids(await browser.text(path))
        address = f"http://localhost{path}"
        for pages in (2, 3, 4):
            more = await browser.get(
                f"{path}?before={shown[-1]}", headers={**HTMX, "HX-Current-URL": address}
            )
            shown += post_ids(await more.get_data(as_text=True))
            address = f"http://localhost{more.headers['HX-Replace-Url']}"
            assert more.headers["HX-Replace-Url"] == f"{path}?pages={pages}", path
            # Loaded whole, that address shows what the reader has scrolled through.
            assert post_ids(await browser.text(more.headers["HX-Replace-Url"])) == shown, path
        assert shown == newest_first, path
    # A page that started further down keeps its start.
    start = {**HTMX, "HX-Current-URL": f"http://localhost/public?before={newest_first[9]}"}
    more = await browser.get(f"/public?before={newest_first[29]}", headers=start)
    assert more.headers["HX-Replace-Url"] == f"/public?before={newest_first[9]}&pages=2"
    page = await browser.text(more.headers["HX-Replace-Url"])
    assert post_ids(page) == newest_first[10:50]
    # A plain page, and htmx's other requests, leave the address alone.
    assert "HX-Replace-Url" not in (await browser.get("/public?before=9")).headers
    assert "HX-Replace-Url" not in (await browser.get("/public", headers=HTMX)).headers


async def test_pages_is_bounded_and_garbage_is_400(browser, db):
    alice = await make_user(db, "alice")
    posts = [await make_post(db, alice, f"post {n}") for n in range(MAX_PAGES * PAGE_SIZE + 1)]
    page = await browser.text(f"/public?pages={MAX_PAGES + 5}")
    assert post_ids(page) == posts[::-1][: MAX_PAGES * PAGE_SIZE]
    assert older_link(page) is not None
    for garbage in GARBAGE_CURSORS:
        response = await browser.get(f"/public?pages={garbage}")
        assert response.status_code == 400, garbage
