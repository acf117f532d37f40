"""Atom feeds of an account and of a hashtag: valid Atom 1.0 read by a real feed parser, with
absolute links from PUBLIC_ORIGIN, conditional requests answered with 304, fresh after every
write, linked from the pages they follow, public to everyone alike."""

from __future__ import annotations

import dataclasses
from xml.etree import ElementTree

import feedparser
import pytest

from microblog.web.state import KEY
from tests.conftest import HTMX, make_post, make_user
from tests.test_blocks import relate

pytestmark = pytest.mark.both_layouts

ORIGIN = "https://microblog.example"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, public_origin=ORIGIN)


async def fetch(browser, path: str, **kwargs):
    response = await browser.get(path, **kwargs)
    return response, await response.get_data(as_text=True)


def required_elements_missing(xml: str) -> list[str]:
    """What RFC 4287 requires of a feed and its entries that this document lacks."""
    root = ElementTree.fromstring(xml)  # noqa: S314 - the answer of our own app under test
    missing = [
        f"feed {name}" for name in ("id", "title", "updated") if root.find(ATOM + name) is None
    ]
    feed_author = root.find(ATOM + "author") is not None
    for number, entry in enumerate(root.findall(ATOM + "entry")):
        missing += [
            f"entry {number} {name}"
            for name in ("id", "title", "updated")
            if entry.find(ATOM + name) is None
        ]
        links = [link.get("rel", "alternate") for link in entry.findall(ATOM + "link")]
        if "alternate" not in links and entry.find(ATOM + "content") is None:
            missing.append(f"entry {number} link rel=alternate")
        if not feed_author and entry.find(f"{ATOM}author/{ATOM}name") is None:
            missing.append(f"entry {number} author")
    return missing


async def test_an_accounts_feed_is_valid_atom_with_absolute_links(browser, db):
    alice = await make_user(db, "alice")
    await db.execute("UPDATE users SET display_name = 'Alice W' WHERE id = $1", alice.id)
    first = await make_post(db, alice, "hello <b>world</b> #intro with @alice")
    second = await make_post(db, alice, "a second post")

    response, xml = await fetch(browser, "/@alice/feed.atom")
    assert response.status_code == 200
    assert response.content_type.startswith("application/atom+xml")
    assert required_elements_missing(xml) == []
    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    assert parsed.feed.id == f"{ORIGIN}/@alice/feed.atom"
    assert parsed.feed.title == "Alice W (@alice)"
    assert parsed.feed.link == f"{ORIGIN}/@alice"
    assert parsed.feed.updated_parsed is not None
    assert [entry.id for entry in parsed.entries] == [
        f"{ORIGIN}/posts/{second}",
        f"{ORIGIN}/posts/{first}",
    ]
    entry = parsed.entries[1]
    assert entry.link == f"{ORIGIN}/posts/{first}"
    assert entry.title == "hello <b>world</b> #intro with @alice"
    assert entry.author_detail.name == "Alice W"
    assert entry.author_detail.href == f"{ORIGIN}/@alice"
    assert entry.updated_parsed is not None
    html = entry.content[0].value
    assert "&lt;b&gt;world&lt;/b&gt;" in html  # the post's text, never markup of its own
    assert f'href="{ORIGIN}/tags/intro"' in html  # site links resolved against xml:base


async def test_a_tags_feed_lists_the_posts_with_it(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    tagged = [await make_post(db, alice, "soup #Winter"), await make_post(db, bob, "#winter tea")]
    await make_post(db, bob, "summer")

    response, xml = await fetch(browser, "/tags/winter/feed.atom")
    assert response.status_code == 200
    assert required_elements_missing(xml) == []
    parsed = feedparser.parse(xml)
    assert not parsed.bozo
    assert parsed.feed.title == "#winter"
    assert parsed.feed.link == f"{ORIGIN}/tags/winter"
    assert [e.id for e in parsed.entries] == [f"{ORIGIN}/posts/{i}" for i in reversed(tagged)]
    assert [e.author_detail.name for e in parsed.entries] == ["bob", "alice"]


async def test_an_account_with_no_posts_has_an_empty_valid_feed(browser, db):
    await make_user(db, "quiet")
    response, xml = await fetch(browser, "/@quiet/feed.atom")
    assert response.status_code == 200
    assert required_elements_missing(xml) == []
    assert feedparser.parse(xml).entries == []


@pytest.mark.parametrize(
    "path", ["/@nobody/feed.atom", "/tags/nothing/feed.atom", "/tags/2024/feed.atom"]
)
async def test_a_feed_of_no_one_or_nothing_is_404(browser, db, path):
    await make_user(db, "alice")
    assert (await browser.get(path)).status_code == 404


async def test_a_current_copy_gets_304_and_a_write_changes_the_feed(make_browser, db):
    alice = await make_user(db, "alice")
    await make_post(db, alice, "first")
    reader, writer = make_browser(), make_browser()
    await writer.sign_in(alice)

    response, _ = await fetch(reader, "/@alice/feed.atom")
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    again, body = await fetch(reader, "/@alice/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert body == ""
    assert again.headers["ETag"] == etag
    since = await reader.get("/@alice/feed.atom", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    weak = await reader.get("/@alice/feed.atom", headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304  # as a compressing proxy passes it on
    stale = await reader.get("/@alice/feed.atom", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200

    assert (await writer.post("/posts", {"body": "second"})).status_code == 303
    after, xml = await fetch(reader, "/@alice/feed.atom", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert [e.title for e in feedparser.parse(xml).entries] == ["second", "first"]


async def test_a_new_display_name_reaches_the_feed(make_browser, db):
    alice = await make_user(db, "alice")
    await make_post(db, alice, "first")
    reader, writer = make_browser(), make_browser()
    await writer.sign_in(alice)
    _, before = await fetch(reader, "/@alice/feed.atom")
    assert feedparser.parse(before).feed.title == "alice (@alice)"
    saved = await writer.post("/settings", {"display_name": "Alice Renamed", "bio": ""})
    assert saved.status_code in (200, 303)
    _, after = await fetch(reader, "/@alice/feed.atom")
    assert feedparser.parse(after).feed.title == "Alice Renamed (@alice)"


async def test_profile_and_tag_pages_link_their_feeds(browser, db):
    alice = await make_user(db, "alice")
    await make_post(db, alice, "tea #winter")
    link = '<link rel="alternate" type="application/atom+xml"'
    profile = await browser.text("/@alice")
    assert f'{link} title="Posts of @alice" href="/@alice/feed.atom">' in profile
    tag = await browser.text("/tags/winter")
    assert f'{link} title="Posts with #winter" href="/tags/winter/feed.atom">' in tag
    assert link not in await browser.text("/@alice", headers=HTMX)  # a fragment has no head


async def test_a_feed_is_the_same_for_everyone_blocks_included(make_browser, db):
    alice, blocked = await make_user(db, "alice"), await make_user(db, "blocked")
    await make_post(db, alice, "public words")
    await relate(db, "blocks", alice, blocked)
    anonymous, reader = make_browser(), make_browser()
    await reader.sign_in(blocked)
    assert (await reader.get("/@alice")).status_code == 403  # the page knows who asks
    _, for_anyone = await fetch(anonymous, "/@alice/feed.atom")
    _, for_blocked = await fetch(reader, "/@alice/feed.atom")
    assert for_blocked == for_anyone


async def test_without_a_public_origin_links_use_the_requests_address(app, browser, db):
    state = app.extensions[KEY]
    unset = dataclasses.replace(state.settings, public_origin=None)
    app.extensions[KEY] = dataclasses.replace(state, settings=unset)
    alice = await make_user(db, "alice")
    post = await make_post(db, alice, "hello")
    _, xml = await fetch(browser, "/@alice/feed.atom")
    parsed = feedparser.parse(xml)
    assert parsed.feed.id == "http://localhost/@alice/feed.atom"
    assert parsed.entries[0].id == f"http://localhost/posts/{post}"


async def test_with_the_cache_off_every_request_reads_the_feed_afresh(app, browser, db):
    app.extensions[KEY] = dataclasses.replace(app.extensions[KEY], cache=None)
    alice = await make_user(db, "alice")
    await make_post(db, alice, "first")
    response, _ = await fetch(browser, "/@alice/feed.atom")
    etag = response.headers["ETag"]
    assert (
        await browser.get("/@alice/feed.atom", headers={"If-None-Match": etag})
    ).status_code == 304
    await make_post(db, alice, "second")  # no duties: only a fresh read can see it
    _, xml = await fetch(browser, "/@alice/feed.atom")
    assert [e.title for e in feedparser.parse(xml).entries] == ["second", "first"]
