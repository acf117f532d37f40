"""GET /search: posts by their words and filters, people by their names, what blocks and mutes
hide, and bad input answered with a page, never a 500."""

from __future__ import annotations

import re

import pytest

from microblog.search.parse import parse
from tests.conftest import HTMX, make_post, make_user, post_ids
from tests.test_blocks import relate

pytestmark = pytest.mark.both_layouts


def people_on(page: str) -> list[str]:
    return re.findall(r'<span class="handle">@(\w+)</span>', page)


async def test_words_phrases_or_and_minus_find_the_posts_that_match(browser, db):
    alice = await make_user(db, "alice")
    running = await make_post(db, alice, "I went running in the park")
    runs = await make_post(db, alice, "she runs every morning by the river")
    phrase = await make_post(db, alice, "the park bench was cold")
    await make_post(db, alice, "nothing to see here")

    assert set(post_ids(await browser.text("/search?q=run"))) == {running, runs}
    assert post_ids(await browser.text('/search?q="park bench"')) == [phrase]
    assert set(post_ids(await browser.text("/search?q=river or bench"))) == {runs, phrase}
    assert post_ids(await browser.text("/search?q=park -bench")) == [running]


async def test_from_and_tag_inside_the_query_filter_the_posts(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    tagged = await make_post(db, alice, "coffee time #morning")
    await make_post(db, bob, "coffee again #morning")
    untagged = await make_post(db, alice, "coffee later")

    assert set(post_ids(await browser.text("/search?q=from:alice coffee"))) == {tagged, untagged}
    assert post_ids(await browser.text("/search?q=from:alice %23morning")) == [tagged]
    assert len(post_ids(await browser.text("/search?q=%23morning"))) == 2
    assert post_ids(await browser.text("/search?q=from:nobody coffee")) == []


async def test_a_better_and_newer_match_ranks_first(browser, db):
    alice = await make_user(db, "alice")
    old = await make_post(db, alice, "tea tea tea")
    await db.execute("UPDATE posts SET created_at = now() - interval '60 days' WHERE id = $1", old)
    new = await make_post(db, alice, "tea tea tea")
    assert post_ids(await browser.text("/search?q=tea")) == [new, old]


async def test_people_are_found_by_prefix_display_name_and_a_typo(browser, db):
    alice = await make_user(db, "alice_w")
    await db.execute("UPDATE users SET display_name = 'Wonder Land' WHERE id = $1", alice.id)
    await make_user(db, "alicorn")
    await make_user(db, "bob")

    assert sorted(people_on(await browser.text("/search?q=ali"))) == ["alice_w", "alicorn"]
    assert people_on(await browser.text("/search?q=alicorn"))[0] == "alicorn"
    assert people_on(await browser.text("/search?q=wond")) == ["alice_w"]
    assert "alicorn" in people_on(await browser.text("/search?q=alicron"))  # a typo
    assert people_on(await browser.text("/search?q=zzz")) == []


async def test_results_leave_out_blocked_and_muted_accounts(make_browser, db):
    viewer = await make_user(db, "viewer")
    blocker, muted = await make_user(db, "blocker"), await make_user(db, "muted")
    shown = await make_post(db, viewer, "lunch is ready")
    await make_post(db, blocker, "lunch with friends")
    await make_post(db, muted, "lunch alone")
    await relate(db, "blocks", blocker, viewer)
    await relate(db, "mutes", viewer, muted)
    browser = make_browser()
    await browser.sign_in(viewer)

    assert post_ids(await browser.text("/search?q=lunch")) == [shown]
    assert people_on(await browser.text("/search?q=blocker")) == []
    assert len(post_ids(await make_browser().text("/search?q=lunch"))) == 3  # anonymous


async def test_htmx_gets_the_results_alone_and_a_plain_request_the_page(browser, db):
    alice = await make_user(db, "alice")
    post = await make_post(db, alice, "soup recipe")
    fragment = await browser.text("/search?q=soup", headers=HTMX)
    assert post_ids(fragment) == [post]
    assert "<html" not in fragment
    page = await browser.text("/search?q=soup")
    assert "<html" in page
    assert 'id="search-q"' in page
    assert 'value="soup"' in page


async def test_results_come_in_bounded_pages(browser, db):
    alice = await make_user(db, "alice")
    ids = [await make_post(db, alice, f"pasta number {n}") for n in range(25)]
    first = await browser.text("/search?q=pasta")
    assert len(post_ids(first)) == 20
    assert "page=2" in first
    second = await browser.text("/search?q=pasta&page=2")
    assert set(post_ids(first)) | set(post_ids(second)) == set(ids)
    assert (await browser.get("/search?q=pasta&page=999")).status_code == 400
    assert (await browser.get("/search?q=pasta&page=x")).status_code == 400


async def test_an_empty_query_shows_the_form(browser, db):
    page = await browser.text("/search?q=")
    assert 'id="search-q"' in page
    assert "Type words" in page
    assert 'id="search-q"' in await browser.text("/search")


async def test_a_query_too_long_gets_422_with_a_message(browser):
    response = await browser.get("/search?q=" + "a" * 1001)
    assert response.status_code == 422
    assert "at most 1000 characters" in await response.get_data(as_text=True)


@pytest.mark.parametrize(
    "q",
    ["-", '"', "from:", "#", "or", "the", "-the", '"""', "from:alice", "#-", "!!!", "@", "&|!:*()"],
)
async def test_syntax_alone_never_fails(browser, db, q):
    await make_user(db, "alice")
    response = await browser.get("/search", query_string={"q": q})
    assert response.status_code == 200, q


def test_the_query_syntax_is_parsed():
    query = parse('from:Alice "hot soup" #Winter -cold from:')
    assert query.author == "alice"
    assert query.tags == ("winter",)
    assert query.words == '"hot soup" -cold from:'
    assert query.name is None
    assert parse("  Ali  ").name == "ali"
    assert parse("@Ali Smith").name == "ali smith"
    assert parse('"ali smith"').name is None
    assert parse("ali -smith").name is None
    assert parse("ali or bob").name is None
    assert parse("---").name is None
