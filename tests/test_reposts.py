"""Reposts: idempotent and counted on the post, shown once in followers' home timelines at the
newest repost, on the reposter's profile, told to the author by a job, gone with their post."""

from __future__ import annotations

import random

import pytest

from microblog.db.keyset import BIGINT_MAX
from microblog.db.transactions import without_duties
from microblog.follows.queries import follow
from microblog.jobs.registry import JobContext
from microblog.reposts.jobs import post_reposted
from microblog.timelines import queries
from microblog.web.pagination import PAGE_SIZE
from tests.conftest import HTMX, entries, make_post, make_repost, make_user, post_ids
from tests.jobs.conftest import run_app_jobs
from tests.test_notifications import _listed

pytestmark = pytest.mark.both_layouts


async def follows(db, follower, *followees) -> None:
    async with without_duties(db):
        for followee in followees:
            await follow(db, follower.id, followee.id)


async def repost_count(db, post_id: int) -> int:
    return await db.fetchval("SELECT repost_count FROM posts WHERE id = $1", post_id)


async def test_repost_and_unrepost_are_idempotent_and_counted_on_the_row(browser, make_browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    post = await make_post(db, bob, "worth sharing")
    await browser.sign_in(alice)
    for _ in range(2):
        response = await browser.post(f"/posts/{post}/repost", {"next": "/public"})
        assert response.status_code == 303
        assert response.headers["Location"] == "/public"
    assert await repost_count(db, post) == 1
    assert f'action="/posts/{post}/unrepost"' in await browser.text(f"/posts/{post}")
    other = make_browser()
    await other.sign_in(bob)  # the author may repost their own post too
    assert (await other.post(f"/posts/{post}/repost")).status_code == 303
    assert await repost_count(db, post) == 2
    assert 'aria-label="2 reposts"' in await make_browser().text(f"/posts/{post}")
    for _ in range(2):
        response = await browser.post(f"/posts/{post}/unrepost")
        assert response.status_code == 303
        assert response.headers["Location"] == f"/posts/{post}"
    assert await repost_count(db, post) == 1
    assert await db.fetchval("SELECT array_agg(user_id) FROM reposts") == [bob.id]


async def test_repost_through_htmx_answers_the_pressed_button_with_its_count(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    post = await make_post(db, bob, "hx")
    await browser.sign_in(alice)
    reposted = await browser.post(f"/posts/{post}/repost", headers=HTMX)
    html = await reposted.get_data(as_text=True)
    assert reposted.status_code == 200
    assert "HX-Request" in reposted.headers["Vary"]
    assert "<html" not in html
    assert f'action="/posts/{post}/unrepost"' in html
    assert f'id="post-{post}-repost"' in html  # the id that keeps the keyboard's focus
    assert 'aria-pressed="true"' in html
    assert 'aria-label="Undo repost (1 repost)"' in html
    undone = await browser.post(f"/posts/{post}/unrepost", headers=HTMX)
    html = await undone.get_data(as_text=True)
    assert f'action="/posts/{post}/repost"' in html
    assert 'aria-pressed="false"' in html
    assert '<span class="count">0</span>' in html


async def test_reposting_needs_a_login_and_a_post_that_exists(browser, db):
    bob = await make_user(db, "bob")
    post = await make_post(db, bob, "mine")
    response = await browser.post(f"/posts/{post}/repost")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")
    await browser.sign_in(bob)
    assert (await browser.post("/posts/424242/repost")).status_code == 404
    assert (await browser.post("/posts/424242/unrepost")).status_code == 404
    refused = await browser.client.post(f"/posts/{post}/repost", form={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert await repost_count(db, post) == 0


async def test_followers_see_a_post_once_with_its_newest_repost(browser, db):
    alice, bob, carol, dave = [await make_user(db, n) for n in ("alice", "bob", "carol", "dave")]
    await follows(db, alice, bob, carol, dave)
    shared = await make_post(db, dave, "shared by many")
    other = await make_post(db, dave, "dave's next post")
    await make_repost(db, bob, shared)
    await make_repost(db, carol, shared)
    await browser.sign_in(alice)
    page = await browser.text("/")
    assert entries(page) == [(shared, "carol"), (other, None)]
    assert "shared by many" in page
    assert '<a href="/@carol"><bdi>carol</bdi></a> reposted' in page
    # A stranger's repost is not in alice's timeline; her own is, as hers.
    eve = await make_user(db, "eve")
    stranger = await make_post(db, eve, "eve's post")
    await make_repost(db, eve, other)
    await make_repost(db, alice, stranger)
    assert entries(await browser.text("/")) == [(stranger, "You"), (shared, "carol"), (other, None)]


async def test_a_repost_is_on_the_reposters_profile_and_their_own_post_shows_once(browser, db):
    bob, carol = await make_user(db, "bob"), await make_user(db, "carol")
    own = await make_post(db, bob, "bob's own")
    later = await make_post(db, bob, "bob's later")
    theirs = await make_post(db, carol, "carol's")
    await make_repost(db, bob, theirs)
    await make_repost(db, bob, own)  # bob brings his own older post back up
    assert entries(await browser.text("/@bob")) == [(own, "bob"), (theirs, "bob"), (later, None)]
    assert entries(await browser.text("/@carol")) == [(theirs, None)]
    # The public and tag timelines list posts, each once, newest first: no reposts there.
    assert post_ids(await browser.text("/public")) == [theirs, later, own]


async def test_home_pages_neither_repeat_nor_skip_when_posts_and_reposts_interleave(browser, db):
    """A post reposted later moves up to its repost. When the page boundary falls between the
    two (the repost on the first page, the post's own place on the second), the second page
    does not show the post again, and skips nothing."""
    alice, bob, carol = [await make_user(db, n) for n in ("alice", "bob", "carol")]
    await follows(db, alice, bob, carol)
    bobs = [await make_post(db, bob, f"bob {n}") for n in range(30)]
    carols = [await make_post(db, carol, f"carol {n}") for n in range(5)]
    boosted = bobs[3]
    await make_repost(db, carol, boosted)
    await browser.sign_in(alice)
    first = await browser.text("/")
    rest_of_bobs = [(post, None) for post in bobs[::-1] if post != boosted]
    expected = [(boosted, "carol"), *[(post, None) for post in carols[::-1]], *rest_of_bobs]
    assert entries(first) == expected[:PAGE_SIZE]
    last_shown = expected[PAGE_SIZE - 1][0]
    assert f'href="?before={last_shown}"' in first  # a post's entry is the post's own id
    second = await browser.text(f"/?before={last_shown}")
    assert entries(second) == expected[PAGE_SIZE:]
    assert 'href="?before=' not in second


async def test_the_cursor_names_the_entry_a_page_ends_on_whether_post_or_repost(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    await follows(db, alice, bob)
    old = await make_post(db, bob, "old")
    alices = [await make_post(db, alice, f"alice {n}") for n in range(PAGE_SIZE - 1)]
    repost = await make_repost(db, bob, old)
    newest = [await make_post(db, alice, "newest"), await make_post(db, bob, "newer still")]
    await browser.sign_in(alice)
    timeline = [*[(post, None) for post in newest[::-1]], (old, "bob")]
    timeline += [(post, None) for post in alices[::-1]]
    first = await browser.text("/")
    assert entries(first) == timeline[:PAGE_SIZE]
    # A page that ends on the repost: the next one starts below the repost's entry, and the
    # reposted post, shown above, does not come again at its own place.
    assert entries(await browser.text(f"/?before={newest[0]}")) == timeline[2 : 2 + PAGE_SIZE]
    assert entries(await browser.text(f"/?before={repost}")) == timeline[3:]


def _timeline(posts, reposts, authors, hidden) -> list[tuple[int, int]]:
    """The home timeline by its definition: (newest entry, post), newest first."""
    newest: dict[int, int] = {}
    for post_id, author in posts.items():
        if author in authors:
            newest[post_id] = max(newest.get(post_id, 0), post_id)
    for repost_id, (user, post_id) in reposts.items():
        if user in authors and posts[post_id] not in hidden:
            newest[post_id] = max(newest.get(post_id, 0), repost_id)
    return sorted(((entry, post) for post, entry in newest.items()), reverse=True)


@pytest.mark.parametrize("seed", range(4))
async def test_home_pages_of_any_size_add_up_to_the_whole_timeline(db, seed):
    """Random posts and reposts, many of the same posts, by people the reader follows (one of
    them muted) and by others: paging through, at any page size, meets every post once, at its
    newest entry, in order. Small pages are where reading each author's first entries alone
    would leave some out."""
    rng = random.Random(seed)
    users = [await make_user(db, f"user{n}") for n in range(8)]
    reader, followed = users[0], [user for user in users[1:] if rng.random() < 0.7]
    await follows(db, reader, *followed)
    muted = followed[-1].id if seed % 2 else None
    if muted:
        await db.execute("INSERT INTO mutes (muter_id, muted_id) VALUES ($1, $2)", reader.id, muted)
    posts: dict[int, int] = {}
    reposts: dict[int, tuple[int, int]] = {}
    for _ in range(250):
        if posts and rng.random() < 0.45:
            user, post_id = rng.choice(users), rng.choice(list(posts))
            if (user.id, post_id) not in reposts.values():
                reposts[await make_repost(db, user, post_id)] = (user.id, post_id)
        else:
            author = rng.choice(users[:3] * 4 + users)  # a few write most
            posts[await make_post(db, author, "x")] = author.id
    authors = {reader.id} | {user.id for user in followed} - {muted}
    expected = _timeline(posts, reposts, authors, {muted})
    for size in (1, 3, 7, PAGE_SIZE + 1):
        seen, before = [], BIGINT_MAX
        while True:
            page = [tuple(row) for row in await db.fetch(
                "SELECT entry_id, post_id FROM home_timeline($1, $2, $3)", reader.id, before, size
            )]  # fmt: skip
            seen += page
            if len(page) < size:
                break
            before = page[-1][0]
        assert seen == expected, f"page size {size}"
    views = await queries.home(db, reader.id, None, PAGE_SIZE)
    assert [(view.entry_id, view.id) for view in views] == expected[:PAGE_SIZE]


async def test_a_repost_notifies_the_author_once_by_a_job(make_browser, pools, db, queue_db):
    author = await make_user(db, "author")
    await make_user(db, "fan")
    post = await make_post(db, author, "share me")
    fan = make_browser()
    await fan.login("fan")
    for action in ("repost", "unrepost", "repost", "repost"):
        await fan.post(f"/posts/{post}/{action}")
    assert await queue_db.fetchval("SELECT count(*) FROM infra.jobs") == 2  # one per repost made
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", author.id) == 1
    as_author = make_browser()
    await as_author.login("author")
    assert _listed(await as_author.text("/notifications")) == ["fan reposted your post"]


async def test_a_repost_job_that_runs_after_an_unrepost_or_twice_adds_nothing_more(
    pools, transactions, db
):
    author, fan = await make_user(db, "author"), await make_user(db, "fan")
    post = await make_post(db, author, "share me")
    context = JobContext(pools, job_id=0, attempt=1, transaction=transactions)
    await post_reposted(context, {"post_id": post, "user_id": fan.id})
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0  # no repost: nothing
    await make_repost(db, fan, post)
    for _ in range(2):
        await post_reposted(context, {"post_id": post, "user_id": fan.id})
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE kind = 'repost'") == 1


async def test_deleting_a_post_takes_its_reposts_and_their_notifications_along(
    make_browser, pools, db
):
    author, fan, reader = [await make_user(db, n) for n in ("author", "fan", "reader")]
    await follows(db, reader, fan)
    post = await make_post(db, author, "soon gone")
    as_fan = make_browser()
    await as_fan.sign_in(fan)
    await as_fan.post(f"/posts/{post}/repost")
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", author.id) == 1
    as_author = make_browser()
    await as_author.sign_in(author)
    assert (await as_author.post(f"/posts/{post}/delete")).status_code == 303
    assert await db.fetchval("SELECT count(*) FROM reposts") == 0
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", author.id) == 0
    as_reader = make_browser()
    await as_reader.sign_in(reader)
    assert entries(await as_reader.text("/")) == []
    assert entries(await as_fan.text("/@fan")) == []
