"""A request never holds one pooled connection while waiting for another.

With the pool down to a single connection, a request that did so would wait on itself: its
cache lookups would time out and count as errors, its pages would crawl.
"""

from __future__ import annotations

import dataclasses

import pytest

from microblog.app import create_app
from microblog.db.pools import open_pools
from tests.conftest import HTMX, Browser, app_state, make_post, make_user


@pytest.fixture
async def one_connection_app(settings):
    narrow = dataclasses.replace(settings, db_pool_size=1)
    async with open_pools(narrow, application_name="one connection") as pools:
        app = create_app(narrow, pools, instance_name="narrow")
        async with app.test_app():
            yield app


async def test_every_page_works_with_a_single_pooled_connection(one_connection_app, db, caplog):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    first = await make_post(db, bob, "hello @alice #intro")
    await make_post(db, alice, "a reply", in_reply_to=first)
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)", alice.id, bob.id
    )
    browser = Browser(one_connection_app.test_client())
    await browser.login("alice")
    for page in ("/", "/public", "/@bob", f"/posts/{first}", "/tags/intro", "/notifications"):
        await browser.text(page)
    await browser.post("/posts", {"body": "through htmx"}, headers=HTMX)
    await browser.post("/logout")
    for page in ("/", "/public"):
        await browser.text(page)
    assert app_state(one_connection_app).cache.stats.errors == 0
    assert "not bumped" not in caplog.text  # the post's duties found a free connection
