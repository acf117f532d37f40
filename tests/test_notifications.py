"""Notifications: enqueued with the write, written by the real jobs, read by their owner."""

from __future__ import annotations

import re

import pytest

from microblog.jobs.registry import JobContext
from microblog.posts.jobs import post_created
from tests.conftest import make_post, make_user
from tests.jobs.conftest import run_app_jobs

pytestmark = pytest.mark.both_layouts


def _listed(page: str) -> list[str]:
    """'actor verb' for each notification on the page, newest first."""
    items = re.findall(
        r'<bdi class="name">([^<]+)</bdi></a>\s*([a-z ]+?)\s*<time', page, flags=re.DOTALL
    )
    return [f"{actor} {verb}" for actor, verb in items]


async def test_replies_mentions_likes_and_follows_reach_the_right_people(
    make_browser, pools, db, queue_db
):
    alice = await make_user(db, "alice")
    for name in ("bob", "carol"):
        await make_user(db, name)
    post = await make_post(db, alice, "what do you think?")
    as_bob, as_carol = make_browser(), make_browser()
    await as_bob.login("bob")
    await as_carol.login("carol")
    await as_bob.post("/posts", {"body": "@carol @bob look", "in_reply_to": str(post)})
    await as_carol.post(f"/posts/{post}/like")
    await as_carol.post("/@alice/follow")
    assert await queue_db.fetchval("SELECT count(*) FROM infra.jobs") == 3
    await run_app_jobs(pools)

    as_alice = make_browser()
    await as_alice.login("alice")
    # The three jobs ran side by side, so their notifications may be in any order.
    assert sorted(_listed(await as_alice.text("/notifications"))) == [
        "bob replied to your post",
        "carol followed you",
        "carol liked your post",
    ]
    assert _listed(await as_carol.text("/notifications")) == ["bob mentioned you"]
    assert _listed(await as_bob.text("/notifications")) == []  # never to yourself


async def _bob_replies_to_alice(make_browser, pools, db, body: str):
    """alice posts, bob (logged in on the browser returned) replies with `body`, jobs run."""
    alice = await make_user(db, "alice")
    await make_user(db, "bob")
    post = await make_post(db, alice, "what do you think?")
    as_bob = make_browser()
    await as_bob.login("bob")
    await as_bob.post("/posts", {"body": body, "in_reply_to": str(post)})
    await run_app_jobs(pools)
    return alice, post, as_bob


async def test_a_reply_that_names_its_author_notifies_them_once(make_browser, pools, db):
    await _bob_replies_to_alice(make_browser, pools, db, "@alice I agree")
    as_alice = make_browser()
    await as_alice.login("alice")
    assert _listed(await as_alice.text("/notifications")) == ["bob replied to your post"]


async def test_the_unread_count_shows_in_the_navigation_until_the_page_is_seen(
    make_browser, pools, db
):
    await make_user(db, "star")
    for name in ("fan1", "fan2"):
        await make_user(db, name)
        fan = make_browser()
        await fan.login(name)
        await fan.post("/@star/follow")
    await run_app_jobs(pools)
    star = make_browser()
    await star.login("star")
    assert 'aria-label="2 unread"' in await star.text("/")
    page = await star.text("/notifications")
    assert page.count('class="notification card unread"') == 2  # shown as new this once
    assert "unread" not in await star.text("/")
    assert 'class="notification card unread"' not in await star.text("/notifications")


async def test_a_like_taken_back_and_given_again_notifies_once(make_browser, pools, db):
    author = await make_user(db, "author")
    await make_user(db, "fickle")
    post = await make_post(db, author, "like me")
    fickle = make_browser()
    await fickle.login("fickle")
    for action in ("like", "unlike", "like"):
        await fickle.post(f"/posts/{post}/{action}")
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE kind = 'like'") == 1
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", author.id) == 1


async def test_a_notification_job_that_runs_twice_adds_nothing(pools, transactions, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    carol = await make_user(db, "carol")
    post = await make_post(db, alice, "original")
    reply = await make_post(db, bob, "@carol hi", in_reply_to=post)
    context = JobContext(pools, job_id=0, attempt=1, transaction=transactions)
    for _ in range(2):
        await post_created(context, {"post_id": reply})
    assert await db.fetchval("SELECT count(*) FROM notifications") == 2  # reply and mention
    for user in (alice, carol):
        assert (
            await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", user.id) == 1
        )


async def test_a_rejected_post_enqueues_nothing(browser, db, queue_db):
    await make_user(db, "quiet")
    await browser.login("quiet")
    response = await browser.post("/posts", {"body": "@quiet " + "x" * 600})
    assert response.status_code == 422
    assert await queue_db.fetchval("SELECT count(*) FROM infra.jobs") == 0


async def test_deleting_a_post_takes_its_unread_notifications_along(make_browser, pools, db):
    alice, post, bob = await _bob_replies_to_alice(make_browser, pools, db, "hi back")
    reply = await db.fetchval("SELECT id FROM posts WHERE in_reply_to = $1", post)
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", alice.id) == 1
    await bob.post(f"/posts/{reply}/delete")
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", alice.id) == 0


async def test_notifications_page_in_keyset_pages_of_twenty(make_browser, pools, db):
    star = await make_user(db, "star")
    for n in range(23):
        fan = await make_user(db, f"fan{n:02d}")
        await db.execute(
            "INSERT INTO notifications (recipient_id, actor_id, kind) VALUES ($1, $2, 'follow')",
            star.id,
            fan.id,
        )
    browser = make_browser()
    await browser.login("star")
    first = await browser.text("/notifications")
    assert len(_listed(first)) == 20
    cursor = re.search(r'href="\?before=(\d+)"', first).group(1)
    rest = await browser.text(f"/notifications?before={cursor}")
    assert len(_listed(rest)) == 3
    assert (await browser.get("/notifications?before=nope")).status_code == 400
    # Infinite scroll leaves an address that shows both pages, for Back to come back to.
    on_page = {"HX-Request": "true", "HX-Current-URL": "http://localhost/notifications"}
    more = await browser.get(f"/notifications?before={cursor}", headers=on_page)
    assert more.headers["HX-Replace-Url"] == "/notifications?pages=2"
    assert len(_listed(await browser.text("/notifications?pages=2"))) == 23
