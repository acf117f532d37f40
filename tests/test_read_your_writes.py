"""The position a writer's reads must wait for: in their session cookie after a write, only then.

The cookie is signed again only when its content changes (SESSION_REFRESH_EACH_REQUEST is
off), so a reader who does not write is sent no new cookie, and anonymous visitors never carry
a position at all.
"""

from __future__ import annotations

import dataclasses

from microblog.app import create_app
from microblog.db.lsn import Lsn
from microblog.db.pools import open_pools
from microblog.runtime import listening
from microblog.users.known import KnownUsers
from microblog.web.read_your_writes import POSITION
from tests.conftest import Browser, make_post, make_user
from tests.jobs.conftest import run_app_jobs


async def _position(browser: Browser) -> int | None:
    async with browser.client.session_transaction() as session:
        return session.get(POSITION)


async def _primary_position(db) -> Lsn:
    return Lsn(await db.fetchval("SELECT pg_current_wal_insert_lsn()"))


async def test_a_write_puts_the_position_in_the_cookie_and_reading_sends_no_new_one(browser, db):
    user = await make_user(db, "writer")
    await browser.sign_in(user)
    await browser.get("/")  # the page's CSRF token is put in the session once
    assert (await browser.get("/")).headers.get("Set-Cookie") is None
    assert await _position(browser) is None

    before = await _primary_position(db)
    posted = await browser.post("/posts", {"body": "the first"})
    after = await _primary_position(db)
    assert posted.status_code == 303
    assert "Set-Cookie" in posted.headers
    first = await _position(browser)
    assert before < first <= after, "the position is read after the commit, on the primary"

    for path in ("/", "/public", f"/@{user.username}"):
        assert (await browser.get(path)).headers.get("Set-Cookie") is None, path
    assert await _position(browser) == first

    await browser.post("/posts", {"body": "the second"})
    assert await _position(browser) > first


async def test_a_sign_up_carries_the_position_and_anonymous_visitors_none(
    browser, make_browser, db
):
    await make_user(db, "taken")
    await browser.get("/public")
    assert await _position(browser) is None
    refused = await browser.post("/signup", {"username": "taken", "password": "x" * 12})
    assert refused.status_code == 422  # its transaction committed, but no one is logged in
    assert await _position(browser) is None

    newcomer = make_browser()
    signed_up = await newcomer.post("/signup", {"username": "newcomer", "password": "x" * 12})
    assert signed_up.status_code == 303
    assert await _position(newcomer) is not None, "their profile must not 404 on a replica"

    await newcomer.post("/logout")
    assert await _position(newcomer) is None


async def test_a_write_inside_a_get_lands_on_the_primary_while_the_replica_is_paused(
    settings, replica, database_url, db
):
    """The notifications page marks what it shows as read: a transaction, on the primary, with
    the replica paused and in use for every other read."""
    watching = dataclasses.replace(
        settings, replica_database_urls=(replica.url(database_url),), replica_max_lag=600.0
    )
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    post = await make_post(db, alice, "like me")
    async with open_pools(watching, application_name="microblog web notifications") as pools:
        known = KnownUsers()
        app = create_app(watching, pools, instance_name="n", known_users=known)
        async with app.test_app(), listening(pools, known_users=known), pools.replicas.monitoring():
            await replica.wait_replayed()
            await replica.pause_replay()
            as_bob, as_alice = Browser(app.test_client()), Browser(app.test_client())
            await as_bob.sign_in(bob)
            await as_alice.sign_in(alice)
            assert (await as_bob.post(f"/posts/{post}/like")).status_code == 303
            await run_app_jobs(pools)
            assert 'aria-label="1 unread"' in await as_alice.text("/public")
            page = await as_alice.text("/notifications")
            assert "liked your post" in page
            assert await _unread(db, alice) == 0
            (status,) = pools.replicas.statuses
            assert status.up
            assert status.replay_lsn < await _primary_position(db), "the replica never saw it"


async def _unread(db, user) -> int:
    return await db.fetchval("SELECT unread_notifications FROM users WHERE id = $1", user.id)
