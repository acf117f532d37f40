"""Blocks and mutes: what each ends, refuses and hides, on every read path, and their lists."""

from __future__ import annotations

import re

import pytest

from microblog.db.transactions import without_duties
from microblog.follows.queries import follow
from tests.conftest import HTMX, entries, make_post, make_repost, make_user, post_ids
from tests.jobs.conftest import run_app_jobs
from tests.test_follows import follow_counts, listed
from tests.test_notifications import _listed

pytestmark = pytest.mark.both_layouts


async def follows(db, *pairs) -> None:
    async with without_duties(db):
        for follower, followee in pairs:
            await follow(db, follower.id, followee.id)


def _without_live_position(page: str) -> str:
    return re.sub(r"/events\?since=\d+", "/events", page)


async def relate(db, table: str, owner, other) -> None:
    columns = ("blocker_id", "blocked_id") if table == "blocks" else ("muter_id", "muted_id")
    await db.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ($1, $2)", owner.id, other.id
    )


async def text(response) -> str:
    return await response.get_data(as_text=True)


async def test_a_block_ends_the_follows_both_ways_and_refuses_new_ones(make_browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    await follows(db, (alice, bob), (bob, alice))
    as_alice, as_bob = make_browser(), make_browser()
    await as_alice.sign_in(alice)
    await as_bob.sign_in(bob)
    for _ in range(2):  # idempotent
        response = await as_alice.post("/@bob/block", {"next": "/@bob"})
        assert response.status_code == 303
        assert response.headers["Location"] == "/@bob"
    assert await db.fetchval("SELECT count(*) FROM follows") == 0
    assert await follow_counts(db, alice, bob) == [(0, 0), (0, 0)]
    for browser, other in ((as_bob, "alice"), (as_alice, "bob")):
        refused = await browser.post(f"/@{other}/follow")
        assert refused.status_code == 403
        assert "one of you has blocked the other" in await text(refused)
    assert await db.fetchval("SELECT count(*) FROM follows") == 0
    assert (await as_alice.post("/@bob/unblock")).status_code == 303
    assert await db.fetchval("SELECT count(*) FROM blocks") == 0
    assert await db.fetchval("SELECT count(*) FROM follows") == 0  # they do not come back
    assert (await as_bob.post("/@alice/follow")).status_code == 303
    assert await follow_counts(db, alice, bob) == [(1, 0), (0, 1)]


async def test_blocking_asks_first_and_htmx_gets_the_button_or_the_profile_again(browser, db):
    alice = await make_user(db, "alice")
    await make_user(db, "bob")
    await browser.sign_in(alice)
    asking = await browser.text("/@bob/block", headers={"Referer": "http://localhost/public"})
    assert "Block <bdi>bob</bdi> (@bob)?" in asking
    assert '<form method="post" action="/@bob/block"' in asking
    assert '<input type="hidden" name="next" value="/public">' in asking
    assert await db.fetchval("SELECT count(*) FROM blocks") == 0  # asking writes nothing
    # From the profile itself, whose posts and buttons change, htmx loads the profile again.
    on_profile = {**HTMX, "HX-Current-URL": "http://localhost/@bob"}
    blocked = await browser.post("/@bob/block", headers=on_profile)
    assert (blocked.status_code, blocked.headers["HX-Redirect"]) == (200, "/@bob")
    # Elsewhere (the lists in settings) the button is swapped for its opposite.
    on_list = {**HTMX, "HX-Current-URL": "http://localhost/settings/blocks"}
    unblocked = await browser.post("/@bob/unblock", headers=on_list)
    html = await text(unblocked)
    assert "<html" not in html
    assert 'id="block-bob"' in html  # the id that keeps the keyboard's focus
    assert 'aria-pressed="false"' in html
    assert 'hx-confirm="Block @bob?' in html
    muted = await text(await browser.post("/@bob/mute", headers=on_profile))
    assert 'action="/@bob/unmute"' in muted
    assert 'aria-pressed="true"' in muted
    assert await db.fetchval("SELECT count(*) FROM mutes") == 1
    assert await db.fetchval("SELECT count(*) FROM blocks") == 0


async def test_blocking_or_muting_yourself_is_422_and_nobody_is_404(browser, db):
    await make_user(db, "alice")
    await browser.login("alice")
    for action in ("block", "unblock", "mute", "unmute"):
        response = await browser.post(f"/@ALICE/{action}")
        assert response.status_code == 422
        assert f"You cannot {action} yourself." in await text(response)
        assert (await browser.post(f"/@nobody/{action}")).status_code == 404
    assert (await browser.get("/@alice/block")).status_code == 422
    assert await db.fetchval("SELECT count(*) FROM blocks") == 0
    assert await db.fetchval("SELECT count(*) FROM mutes") == 0


async def test_blocking_needs_a_login_and_the_csrf_token(browser, db):
    await make_user(db, "bob")
    response = await browser.post("/@bob/block")
    assert response.headers["Location"].startswith("/login?next=")
    await browser.login("bob")
    await make_user(db, "carol")
    assert (await browser.client.post("/@carol/mute", form={"csrf_token": "x"})).status_code == 403
    assert await db.fetchval("SELECT count(*) FROM mutes") == 0


async def test_neither_side_of_a_block_can_reply_to_or_repost_the_other(make_browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    alices, bobs = await make_post(db, alice, "alice's"), await make_post(db, bob, "bob's")
    await relate(db, "blocks", alice, bob)
    for user, post, other in ((bob, alices, "alice"), (alice, bobs, "bob")):
        browser = make_browser()
        await browser.sign_in(user)
        reply = await browser.post("/posts", {"body": "hey", "in_reply_to": str(post)})
        assert reply.status_code == 403
        assert "You cannot reply to this post." in await text(reply)
        fragment = await browser.post(
            "/posts", {"body": "hey", "in_reply_to": str(post)}, headers=HTMX
        )
        assert fragment.status_code == 403
        assert fragment.headers["HX-Retarget"] == "#compose"  # the message beside the text
        assert '<p class="error">You cannot reply to this post.' in await text(fragment)
        reposted = await browser.post(f"/posts/{post}/repost")
        assert reposted.status_code == 403
        assert f"@{other}" in await text(reposted)
    assert await db.fetchval("SELECT count(*) FROM posts") == 2
    assert await db.fetchval("SELECT sum(reply_count) + sum(repost_count) FROM posts") == 0
    assert await db.fetchval("SELECT count(*) FROM reposts") == 0


async def test_a_blocked_account_mentions_and_likes_notify_no_one(make_browser, pools, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    post = await make_post(db, alice, "hello")
    await relate(db, "blocks", alice, bob)
    as_bob = make_browser()
    await as_bob.sign_in(bob)
    assert (await as_bob.post("/posts", {"body": "@alice listen"})).status_code == 303
    await as_bob.post(f"/posts/{post}/like")
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", alice.id) == 0


async def test_a_blocked_viewer_sees_none_of_the_blockers_posts_anywhere(make_browser, db):
    alice, bob, carol = [await make_user(db, n) for n in ("alice", "bob", "carol")]
    await follows(db, (bob, carol), (alice, carol))
    alices = await make_post(db, alice, "alice on #topic")
    carols = await make_post(db, carol, "carol on #topic", in_reply_to=alices)
    alice_replies = await make_post(db, alice, "alice answers", in_reply_to=carols)
    await make_repost(db, carol, alices)
    await relate(db, "blocks", alice, bob)
    as_bob = make_browser()
    await as_bob.sign_in(bob)
    for path in ("/@alice", f"/posts/{alices}", f"/posts/{alice_replies}", "/@alice/followers"):
        response = await as_bob.get(path)
        assert response.status_code == 403, path
    assert "@alice has blocked you." in await text(await as_bob.get("/@alice"))
    assert post_ids(await as_bob.text("/public")) == [carols]
    assert post_ids(await as_bob.text("/tags/topic")) == [carols]
    assert entries(await as_bob.text("/")) == [(carols, None)]  # not carol's repost of alice's
    assert entries(await as_bob.text("/@carol")) == [(carols, None)]
    thread = await as_bob.text(f"/posts/{carols}")
    assert post_ids(thread) == [carols]  # neither the post it answers nor alice's answer
    assert listed(await as_bob.text("/@carol/followers")) == ["bob"]
    # Anonymous visitors see everything, as before.
    assert post_ids(await make_browser().text("/public")) == [alice_replies, carols, alices]


async def test_the_blocker_sees_the_blocked_profile_say_so_and_nothing_of_theirs(make_browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    bobs = await make_post(db, bob, "bob on #topic")
    await relate(db, "blocks", alice, bob)
    as_alice = make_browser()
    await as_alice.sign_in(alice)
    profile = await as_alice.text("/@bob")
    assert "You have blocked @bob" in profile
    assert 'action="/@bob/unblock"' in profile
    assert 'action="/@bob/follow"' not in profile
    assert post_ids(profile) == []
    forbidden = await as_alice.get(f"/posts/{bobs}")
    assert forbidden.status_code == 403
    assert "You have blocked @bob." in await text(forbidden)
    assert post_ids(await as_alice.text("/public")) == []
    assert post_ids(await as_alice.text("/tags/topic")) == []


async def test_blocking_marks_read_what_each_had_from_the_other(make_browser, pools, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    alices, bobs = await make_post(db, alice, "a"), await make_post(db, bob, "b")
    as_alice, as_bob = make_browser(), make_browser()
    await as_alice.sign_in(alice)
    await as_bob.sign_in(bob)
    await as_alice.post(f"/posts/{bobs}/like")
    await as_bob.post(f"/posts/{alices}/like")
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT sum(unread_notifications) FROM users") == 2
    await as_alice.post("/@bob/block")
    assert await db.fetchval("SELECT sum(unread_notifications) FROM users") == 0
    for browser in (as_alice, as_bob):
        assert _listed(await browser.text("/notifications")) == []


async def test_a_muted_account_vanishes_from_the_muters_timelines_and_notifications(
    make_browser, pools, db
):
    alice, bob, carol = [await make_user(db, n) for n in ("alice", "bob", "carol")]
    await follows(db, (alice, bob), (alice, carol))
    alices = await make_post(db, alice, "alice on #topic")
    carols = await make_post(db, carol, "carol on #topic")
    bobs = await make_post(db, bob, "bob on #topic", in_reply_to=alices)
    await make_repost(db, bob, carols)
    as_alice, as_bob = make_browser(), make_browser()
    await as_alice.sign_in(alice)
    await as_bob.sign_in(bob)
    await as_bob.post(f"/posts/{alices}/like")
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", alice.id) == 1
    assert entries(await as_alice.text("/")) == [(carols, "bob"), (bobs, None), (alices, None)]
    bob_sees = _without_live_position(await as_bob.text("/@alice"))

    assert (await as_alice.post("/@bob/mute")).status_code == 303
    # bob is told nothing: his page differs only in where his live stream resumes.
    assert _without_live_position(await as_bob.text("/@alice")) == bob_sees
    assert await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", alice.id) == 0
    assert entries(await as_alice.text("/")) == [(carols, None), (alices, None)]
    assert post_ids(await as_alice.text("/public")) == [carols, alices]
    assert post_ids(await as_alice.text("/tags/topic")) == [carols, alices]
    assert post_ids(await as_alice.text(f"/posts/{alices}")) == [alices]  # no reply of bob's
    await as_bob.post("/posts", {"body": "@alice hello?"})
    await as_bob.post(f"/posts/{alices}/repost")
    await run_app_jobs(pools)
    assert _listed(await as_alice.text("/notifications")) == []
    # Looking for bob shows bob: his profile, his post.
    assert 'action="/@bob/unmute"' in await as_alice.text("/@bob")
    assert bobs in post_ids(await as_alice.text("/@bob"))
    assert post_ids(await as_alice.text(f"/posts/{bobs}"))[-1] == bobs
    # Bob may still reply to her.
    reply = await as_bob.post("/posts", {"body": "ok", "in_reply_to": str(alices)})
    assert reply.status_code == 303

    assert (await as_alice.post("/@bob/unmute")).status_code == 303
    assert (bobs, None) in entries(await as_alice.text("/"))


async def test_the_lists_in_settings_show_whom_you_block_and_mute_and_undo_it(make_browser, db):
    alice = await make_user(db, "alice")
    others = [await make_user(db, f"user{n}") for n in range(3)]
    for other in others:
        await relate(db, "blocks", alice, other)
    await relate(db, "mutes", alice, others[0])
    await relate(db, "blocks", others[1], alice)  # who blocks alice is not hers to list
    as_alice = make_browser()
    await as_alice.sign_in(alice)
    settings = await as_alice.text("/settings")
    assert "<title>Settings &#183; microblog</title>" in settings
    main = settings.split("<main", 1)[1]
    assert main.count('href="/settings/blocks"') == settings.count('href="/settings/blocks"') == 1
    assert main.count('href="/settings/mutes"') == settings.count('href="/settings/mutes"') == 1
    blocked = await as_alice.text("/settings/blocks")
    assert listed(blocked) == ["user2", "user1", "user0"]  # the latest first
    assert blocked.count('action="/@user0/unblock"') == 1
    assert listed(await as_alice.text("/settings/mutes")) == ["user0"]
    response = await as_alice.post("/@user1/unblock", {"next": "/settings/blocks"})
    assert response.headers["Location"] == "/settings/blocks"
    assert listed(await as_alice.text("/settings/blocks")) == ["user2", "user0"]
    on_list = {**HTMX, "HX-Current-URL": "http://localhost/settings/mutes"}
    unmuted = await text(await as_alice.post("/@user0/unmute", headers=on_list))
    assert 'action="/@user0/mute"' in unmuted
    assert "You have not muted anyone." in await as_alice.text("/settings/mutes")
    assert (await make_browser().get("/settings/blocks")).status_code == 303  # to log in


async def test_the_rule_in_the_database_is_two_sided_for_blocks_and_one_sided_for_mutes(db):
    alice, bob, carol = [await make_user(db, n) for n in ("alice", "bob", "carol")]
    await relate(db, "blocks", alice, bob)
    await relate(db, "mutes", alice, carol)

    async def holds(function: str, viewer, author) -> bool:
        return await db.fetchval(
            f"SELECT {function}($1, $2)", viewer and viewer.id, author.id
        )  # fmt: skip

    assert [await holds("may_see", v, a) for v, a in ((alice, bob), (bob, alice))] == [False] * 2
    assert [await holds("shows_to", v, a) for v, a in ((alice, carol), (carol, alice))] == [
        False,
        True,
    ]
    assert await holds("may_see", alice, carol)  # a mute hides, it does not forbid
    assert await holds("shows_to", None, bob)  # nobody logged in: nothing hidden
    hidden = await db.fetchval("SELECT array_agg(h ORDER BY h) FROM hidden_from($1) h", alice.id)
    assert hidden == [bob.id, carol.id]
    assert await db.fetchval("SELECT count(*) FROM hidden_from(NULL)") == 0
