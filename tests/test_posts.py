"""Writing, replying to, reading, deleting and liking posts, as plain forms and through htmx."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from microblog.posts.queries import VIEW_COLUMNS, PostView
from microblog.posts.routes import REPLIES_PER_PAGE
from tests.conftest import HTMX, make_post, make_user, post_ids

pytestmark = pytest.mark.both_layouts

# How a card shows a count of one reply.
ONE_REPLY = '<span aria-hidden="true">&#8617;</span> <span class="count">1</span>'


async def counts(db, post_id: int) -> tuple[int, int]:
    """(reply_count, like_count) as stored on the post's row."""
    row = await db.fetchrow("SELECT reply_count, like_count FROM posts WHERE id = $1", post_id)
    return row["reply_count"], row["like_count"]


async def post_count(db, user) -> int:
    return await db.fetchval("SELECT post_count FROM users WHERE id = $1", user.id)


@pytest.fixture
async def alice(db, browser):
    """A user, logged in on `browser`."""
    user = await make_user(db, "alice")
    await browser.sign_in(user)
    return user


# --- creating ----------------------------------------------------------------------------------


async def test_post_is_stored_with_its_tags_and_counted_when_body_is_valid(
    browser, make_browser, db, alice
):
    await make_user(db, "bob")
    visitor = await make_browser().post("/posts", {"body": "anonymous"})
    assert visitor.status_code == 303
    assert visitor.headers["Location"].startswith("/login")
    response = await browser.post(
        "/posts", {"body": " hello #World @bob\r\n\tbye \n", "next": "/public"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/public"
    post = await db.fetchrow("SELECT id, author_id, body, in_reply_to FROM posts")
    assert (post["author_id"], post["body"], post["in_reply_to"]) == (
        alice.id,
        "hello #World @bob\n\tbye",
        None,
    )
    assert await db.fetchval("SELECT array_agg(tag) FROM post_tags") == ["world"]
    assert await post_count(db, alice) == 1
    home = await browser.text("/")
    assert post_ids(home) == [post["id"]]
    assert '<a class="mention" href="/@bob" dir="ltr">@bob</a>' in home


async def test_body_length_is_counted_in_code_points_after_trimming(browser, db, alice):
    assert (await browser.post("/posts", {"body": "😀" * 500})).status_code == 303
    assert (await browser.post("/posts", {"body": "  " + "x" * 500 + "\n"})).status_code == 303
    too_long = await browser.post("/posts", {"body": "😀" * 501})
    assert too_long.status_code == 422
    page = await too_long.get_data(as_text=True)
    assert "Posts are at most 500 characters; this one has 501." in page
    assert "😀" * 501 in page  # the text is kept for the author to shorten
    lengths = await db.fetch("SELECT char_length(body) AS n FROM posts")
    assert [row["n"] for row in lengths] == [500, 500]
    assert await post_count(db, alice) == 2


async def test_body_is_rejected_with_422_when_blank_or_with_control_characters(browser, db, alice):
    for body in ("", " ", "\n\t \r\n", "\u3000\u00a0\u2003"):
        response = await browser.post("/posts", {"body": body})
        assert response.status_code == 422, repr(body)
        assert "Write something first." in await response.get_data(as_text=True)
    assert (await browser.post("/posts", {})).status_code == 422
    for body in ("a\x00b", "\x1b[31mred", "bell\x07", "del\x7f", "form\x0cfeed", "v\x0bt"):
        response = await browser.post("/posts", {"body": body})
        assert response.status_code == 422, repr(body)
        assert "Posts cannot contain control characters." in await response.get_data(as_text=True)
    assert await db.fetchval("SELECT count(*) FROM posts") == 0
    assert await post_count(db, alice) == 0


async def test_post_is_stored_when_a_tag_grows_past_the_limit_once_lower_cased(browser, db, alice):
    # "İ" lower-cases to two code points: 60 of them would make a 120-character tag row.
    response = await browser.post("/posts", {"body": "#" + "İ" * 60 + " and #fine"})
    assert response.status_code == 303
    assert await db.fetchval("SELECT array_agg(tag) FROM post_tags") == ["fine"]


# --- replies and the thread page ---------------------------------------------------------------


async def test_reply_is_linked_and_counted_on_the_parent_row(browser, db, alice):
    bob = await make_user(db, "bob")
    parent = await make_post(db, bob, "parent")
    response = await browser.post("/posts", {"body": "a reply", "in_reply_to": str(parent)})
    assert response.status_code == 303
    reply_to = await db.fetchval("SELECT in_reply_to FROM posts WHERE author_id = $1", alice.id)
    assert reply_to == parent
    assert await counts(db, parent) == (1, 0)
    assert (await post_count(db, alice), await post_count(db, bob)) == (1, 1)


async def test_reply_is_422_and_writes_nothing_when_the_parent_does_not_exist(browser, db, alice):
    gone = await make_post(db, alice, "soon gone")
    assert (await browser.post(f"/posts/{gone}/delete")).status_code == 303
    for reply_to in (str(gone), "999", "9223372036854775807"):
        response = await browser.post("/posts", {"body": "into the void", "in_reply_to": reply_to})
        assert response.status_code == 422, reply_to
        page = await response.get_data(as_text=True)
        assert "The post you are replying to does not exist." in page
    assert await db.fetchval("SELECT count(*) FROM posts") == 0
    assert await post_count(db, alice) == 0


async def test_post_page_shows_ancestors_oldest_first_then_the_post_then_its_replies(browser, db):
    bob = await make_user(db, "bob")
    root = await make_post(db, bob, "root")
    middle = await make_post(db, bob, "middle", in_reply_to=root)
    leaf = await make_post(db, bob, "leaf", in_reply_to=middle)
    sibling = await make_post(db, bob, "sibling", in_reply_to=middle)
    first = await make_post(db, bob, "first reply", in_reply_to=leaf)
    second = await make_post(db, bob, "second reply", in_reply_to=leaf)
    page = await browser.text(f"/posts/{leaf}")
    assert post_ids(page) == [root, middle, leaf, first, second]
    assert sibling not in post_ids(page)
    assert f'<article class="post focus" id="post-{leaf}"' in page
    assert f'<a href="/login?next=/posts/{leaf}">Log in</a> to reply.' in page
    await browser.sign_in(bob)
    page = await browser.text(f"/posts/{leaf}")
    assert f'<input type="hidden" name="in_reply_to" value="{leaf}">' in page


async def test_a_reply_page_has_a_heading_and_no_lone_link_to_the_thread_shown_above_it(
    browser, db
):
    bob = await make_user(db, "bob")
    root = await make_post(db, bob, "root")
    reply = await make_post(db, bob, "reply", in_reply_to=root)
    page = await browser.text(f"/posts/{reply}")
    assert post_ids(page) == [root, reply]  # the post it replies to is right above it
    assert "In reply to a post" not in page
    assert '<h1 class="page-title">Reply by <bdi>bob</bdi></h1>' in page
    assert '<h1 class="page-title">Post by <bdi>bob</bdi></h1>' in await browser.text(
        f"/posts/{root}"
    )


async def test_post_page_pages_replies_oldest_first_and_answers_htmx_with_the_fragment(browser, db):
    bob = await make_user(db, "bob")
    post = await make_post(db, bob, "popular")
    replies = [
        await make_post(db, bob, f"r{n}", in_reply_to=post) for n in range(REPLIES_PER_PAGE + 1)
    ]
    first_page = await browser.get(f"/posts/{post}")
    html = await first_page.get_data(as_text=True)
    assert post_ids(html) == [post, *replies[:REPLIES_PER_PAGE]]
    last_shown = replies[REPLIES_PER_PAGE - 1]
    assert f'href="?after={last_shown}" hx-get="?after={last_shown}"' in html
    rest = await browser.get(f"/posts/{post}?after={last_shown}", headers=HTMX)
    fragment = await rest.get_data(as_text=True)
    assert rest.status_code == 200
    assert "<html" not in fragment
    assert "<html" in html
    assert post_ids(fragment) == replies[REPLIES_PER_PAGE:]
    assert "?after=" not in fragment
    for response in (first_page, rest):
        assert "HX-Request" in response.headers["Vary"]


# --- deleting ----------------------------------------------------------------------------------


async def test_author_deletes_a_reply_and_the_counts_go_down(browser, db, alice):
    bob = await make_user(db, "bob")
    parent = await make_post(db, bob, "parent")
    reply = await make_post(db, alice, "reply #gone", in_reply_to=parent)
    await browser.post(f"/posts/{reply}/like")
    response = await browser.post(f"/posts/{reply}/delete", {"next": "/public"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/public?deleted=1"
    assert await db.fetchval("SELECT array_agg(id) FROM posts") == [parent]
    assert await db.fetchval("SELECT count(*) FROM likes") == 0
    assert await db.fetchval("SELECT count(*) FROM post_tags") == 0
    assert await counts(db, parent) == (0, 0)
    assert (await post_count(db, alice), await post_count(db, bob)) == (0, 1)


async def test_delete_is_refused_and_changes_nothing_unless_the_author_asks(browser, db, alice):
    bob = await make_user(db, "bob")
    parent = await make_post(db, bob, "parent")
    reply = await make_post(db, bob, "bob's", in_reply_to=parent)
    for others in (
        await browser.get(f"/posts/{reply}/delete"),
        await browser.post(f"/posts/{reply}/delete"),
    ):
        assert others.status_code == 403
        assert "Only the author of a post can delete it." in await others.get_data(as_text=True)
    assert (await browser.get("/posts/4242/delete")).status_code == 404
    assert (await browser.post("/posts/4242/delete")).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM posts") == 2
    assert await counts(db, parent) == (1, 0)
    assert await post_count(db, bob) == 2


async def test_delete_without_javascript_asks_first_then_says_it_is_done(browser, db, alice):
    post = await make_post(db, alice, "think twice")
    card = await browser.text("/public")
    # The card's Delete opens the question; only htmx posts from it, and asks in a dialog.
    form = re.search(
        rf'<form class="inline" method="get" action="/posts/{post}/delete"[^>]*>', card
    )
    assert form
    assert 'hx-confirm="Delete this post?"' in form.group(0)
    response = await browser.get(
        f"/posts/{post}/delete", headers={"Referer": "http://localhost/public?before=9"}
    )
    page = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h1 id="delete-title">Delete this post?</h1>' in page
    assert "think twice" in page
    assert '<input type="hidden" name="next" value="/public?before=9">' in page
    assert '<a class="button secondary" href="/public?before=9">Cancel</a>' in page
    assert await db.fetchval("SELECT count(*) FROM posts") == 1  # asking deletes nothing
    deleted = await browser.post(f"/posts/{post}/delete", {"next": "/public?before=9"})
    assert deleted.headers["Location"] == "/public?before=9&deleted=1"
    assert '<p class="notice">Post deleted.</p>' in await browser.text(deleted.headers["Location"])
    assert '<p class="notice">' not in await browser.text("/public?before=9")
    assert await db.fetchval("SELECT count(*) FROM posts") == 0


async def test_delete_returns_to_the_page_it_came_from_or_the_thread_when_that_page_is_gone(
    browser, db, alice
):
    first = await make_post(db, alice, "first")
    replies = [await make_post(db, alice, f"n{n}", in_reply_to=first) for n in range(12)]
    # Ids from 10 up start with the first post's id, as /posts/10 starts with /posts/1.
    other = next(post for post in replies if str(post).startswith(str(first)))
    own_page = await browser.post(f"/posts/{other}/delete", {"next": f"/posts/{other}?after=1"})
    assert own_page.headers["Location"] == f"/posts/{first}?deleted=1"  # the thread it was in
    elsewhere = await browser.post(f"/posts/{first}/delete", {"next": f"/posts/{other + 1}"})
    assert elsewhere.headers["Location"] == f"/posts/{other + 1}?deleted=1"
    # The replies stay, detached from the deleted post.
    assert await db.fetchval("SELECT count(*) FROM posts WHERE in_reply_to IS NOT NULL") == 0
    assert post_ids(await browser.text(f"/posts/{other + 1}")) == [other + 1]
    top = await browser.post(f"/posts/{other + 1}/delete", {"next": f"/posts/{other + 1}"})
    assert top.headers["Location"] == "/?deleted=1"


async def test_deleting_the_post_of_its_own_page_through_htmx_leaves_that_page(browser, db, alice):
    root = await make_post(db, alice, "root")
    reply = await make_post(db, alice, "reply", in_reply_to=root)
    for post, instead in ((reply, f"/posts/{root}?deleted=1"), (root, "/?deleted=1")):
        own_page = {**HTMX, "HX-Current-URL": f"http://localhost/posts/{post}"}
        response = await browser.post(f"/posts/{post}/delete", headers=own_page)
        assert response.status_code == 200
        assert response.headers["HX-Redirect"] == instead
    assert await db.fetchval("SELECT count(*) FROM posts") == 0


async def test_delete_through_htmx_answers_an_empty_swap(browser, db, alice):
    post = await make_post(db, alice, "bye")
    response = await browser.post(f"/posts/{post}/delete", headers=HTMX)
    assert response.status_code == 200
    assert await response.get_data(as_text=True) == ""
    assert await db.fetchval("SELECT count(*) FROM posts") == 0


async def test_a_reply_deleted_through_htmx_under_its_post_counts_down_there(browser, db, alice):
    post = await make_post(db, alice, "question")
    replies = [await make_post(db, alice, f"answer {n}", in_reply_to=post) for n in range(2)]
    on_thread = {**HTMX, "HX-Current-URL": f"http://localhost/posts/{post}"}
    response = await browser.post(f"/posts/{replies[0]}/delete", headers=on_thread)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    counted = re.fullmatch(
        rf'\s*<a class="action" id="post-{post}-replies"[^>]*>(.*?)</a>\s*', html, re.S
    )
    assert counted
    assert 'hx-swap-oob="true"' in counted.group(0)
    assert " ".join(counted.group(1).split()) == ONE_REPLY
    # Elsewhere the post replied to may not be on the page: nothing is sent for it.
    elsewhere = {**HTMX, "HX-Current-URL": "http://localhost/"}
    response = await browser.post(f"/posts/{replies[1]}/delete", headers=elsewhere)
    assert await response.get_data(as_text=True) == ""
    assert await counts(db, post) == (0, 0)


# --- likes -------------------------------------------------------------------------------------


async def test_like_and_unlike_are_idempotent_and_counted_on_the_row(
    browser, make_browser, db, alice
):
    bob = await make_user(db, "bob")
    post = await make_post(db, bob, "like me")
    for _ in range(2):
        response = await browser.post(f"/posts/{post}/like")
        assert response.status_code == 303
        assert response.headers["Location"] == f"/posts/{post}"
    assert await counts(db, post) == (0, 1)
    assert f'action="/posts/{post}/unlike"' in await browser.text(f"/posts/{post}")
    other = make_browser()
    await other.sign_in(bob)
    await other.post(f"/posts/{post}/like", {"next": "/public"})
    assert await counts(db, post) == (0, 2)
    assert 'aria-label="2 likes"' in await make_browser().text(f"/posts/{post}")
    for _ in range(2):
        assert (await browser.post(f"/posts/{post}/unlike")).status_code == 303
    assert await counts(db, post) == (0, 1)
    assert await db.fetchval("SELECT array_agg(user_id) FROM likes") == [bob.id]


async def test_like_through_htmx_answers_the_pressed_button_with_its_count(browser, db, alice):
    post = await make_post(db, alice, "hx")
    liked = await browser.post(f"/posts/{post}/like", headers=HTMX)
    html = await liked.get_data(as_text=True)
    assert liked.status_code == 200
    assert "HX-Request" in liked.headers["Vary"]
    assert "<html" not in html
    assert f'action="/posts/{post}/unlike"' in html
    assert 'aria-pressed="true"' in html
    assert '<span class="count">1</span>' in html
    unliked = await browser.post(f"/posts/{post}/unlike", headers=HTMX)
    html = await unliked.get_data(as_text=True)
    assert f'action="/posts/{post}/like"' in html
    assert 'aria-pressed="false"' in html
    assert '<span class="count">0</span>' in html


# --- htmx posting ------------------------------------------------------------------------------


async def test_post_through_htmx_answers_a_fragment_for_the_new_post_or_the_errors(
    browser, db, alice
):
    response = await browser.post("/posts", {"body": "via htmx"}, headers=HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in html
    post = await db.fetchval("SELECT id FROM posts")
    assert post_ids(html) == [post]
    assert 'hx-swap-oob="true"' in html
    assert "></textarea>" in html
    assert 'hx-target="#timeline"' in html
    on_thread = {**HTMX, "HX-Current-URL": f"http://localhost/posts/{post}"}
    reply = await browser.post(
        "/posts", {"body": "re", "in_reply_to": str(post)}, headers=on_thread
    )
    html = await reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert f'name="in_reply_to" value="{post}"' in html
    assert 'hx-target="#replies"' in html
    # Shown as the thread shows its replies, with the replied-to post's new count out of band.
    assert "In reply to a post" not in html
    counted = re.search(rf'<a class="action" id="post-{post}-replies"[^>]*>(.*?)</a>', html, re.S)
    assert counted
    assert 'hx-swap-oob="true"' in counted.group(0)
    assert " ".join(counted.group(1).split()) == ONE_REPLY
    page = await browser.text(f"/posts/{post}")
    assert re.search(rf'id="post-{post}-replies"[^>]*>\s*{ONE_REPLY}', page)
    invalid = await browser.post("/posts", {"body": "x" * 501}, headers=HTMX)
    html = await invalid.get_data(as_text=True)
    assert invalid.status_code == 422
    assert invalid.headers["HX-Retarget"] == "#compose"
    assert invalid.headers["HX-Reswap"] == "outerHTML"
    assert "<html" not in html
    assert 'id="compose"' in html
    assert "this one has 501" in html
    assert await db.fetchval("SELECT count(*) FROM posts") == 2


# --- reading -----------------------------------------------------------------------------------


async def test_post_view_columns_are_the_post_view_fields_in_order(db, alice):
    """Rows fill PostView by position, so the columns must be its fields, in its order."""
    await make_post(db, alice, "hello")
    row = await db.fetchrow(
        f"SELECT {VIEW_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id", alice.id
    )
    # The fields after them are a timeline entry's (timelines/queries.py), with defaults.
    names = [field.name for field in fields(PostView)]
    assert list(row.keys()) == names[: names.index("entry_id")]
    view = PostView(*row)
    assert (view.author_username, view.body, view.liked, view.reposted) == (
        "alice",
        "hello",
        False,
        False,
    )
    assert (view.entry_id, view.reposter_username) == (None, None)


def counter(html: str) -> str:
    found = re.search(r'<span class="counter( over)?" id="body-count"[^>]*>([^<]*)</span>', html)
    assert found, "no counter"
    return ("over: " if found[1] else "") + found[2]


async def test_the_compose_counter_counts_what_is_in_the_box_it_comes_with(browser, db, alice):
    assert counter(await browser.text("/")) == "500 characters left"
    refused = await browser.post("/posts", {"body": "x" * 501}, headers=HTMX)
    assert refused.status_code == 422
    assert counter(await refused.get_data(as_text=True)) == "over: 1 character too many"
    # Code points, after trimming, as the server counts a body.
    plain = await browser.post("/posts", {"body": "  " + "é" * 499 + "\U0001f600 "})
    assert plain.status_code == 303
    refused = await browser.post("/posts", {"body": "é" * 502})
    assert counter(await refused.get_data(as_text=True)) == "over: 2 characters too many"
    posted = await browser.post("/posts", {"body": "x" * 499}, headers=HTMX)
    assert posted.status_code == 200
    assert counter(await posted.get_data(as_text=True)) == "500 characters left"
    reply_box = await browser.text(f"/posts/{await db.fetchval('SELECT max(id) FROM posts')}")
    assert counter(reply_box) == "500 characters left"
