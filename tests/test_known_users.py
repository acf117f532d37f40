"""Users' rows kept per web process: used while current, forgotten when a row changes.

Changes made "elsewhere" are made here as another instance or a worker would make them: on a
connection of their own, straight to the database.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import asyncpg

from microblog.app import create_app
from microblog.db.listen import listen
from microblog.users.known import KnownUsers
from microblog.users.queries import Account, account_by_id
from tests.conftest import DEFAULT_PASSWORD, Browser, make_user, unannounced, wait_until


async def _unread_badge(browser: Browser) -> str | None:
    """The navigation's unread count, as the visitor sees it."""
    found = re.search(r'aria-label="(\d+) unread"', await browser.text("/"))
    return found.group(1) if found else None


async def _set_unread_unannounced(db, user_id: int, count: int) -> None:
    """Change a row without the notification: shows whether a page read it or remembered it."""
    async with unannounced(db, "users", "users_updated"):
        await db.execute("UPDATE users SET unread_notifications = $2 WHERE id = $1", user_id, count)


async def test_a_visitors_row_is_remembered_while_listening(app, browser, db, known_users):
    user = await make_user(db)
    await browser.sign_in(user)
    await wait_until(lambda: _listening(known_users))
    assert await _unread_badge(browser) is None  # read and remembered
    await _set_unread_unannounced(db, user.id, 4)
    assert await _unread_badge(browser) is None  # not read again


async def test_a_row_changed_elsewhere_is_read_afresh(app, browser, db, known_users):
    user = await make_user(db)
    await browser.sign_in(user)
    await wait_until(lambda: _listening(known_users))
    assert await _unread_badge(browser) is None
    await db.execute("UPDATE users SET unread_notifications = 3 WHERE id = $1", user.id)
    await wait_until(lambda: _badge_is(browser, "3"))


async def test_a_change_made_here_shows_on_the_next_page_without_waiting(
    app, browser, db, known_users
):
    user = await make_user(db)
    await browser.sign_in(user)
    await wait_until(lambda: _listening(known_users))
    assert 'value=""' in await browser.text("/settings")  # no display name yet: remembered
    # No notification will come: the process must forget the row because it wrote it.
    await db.execute("ALTER TABLE users DISABLE TRIGGER users_updated")
    try:
        response = await browser.post("/settings", {"display_name": "Renamed", "bio": ""})
        assert response.status_code == 303
        assert 'value="Renamed"' in await browser.text("/settings")
    finally:
        await db.execute("ALTER TABLE users ENABLE TRIGGER users_updated")


async def test_a_password_changed_on_another_instance_ends_sessions_here(
    app, settings, pools, make_browser, db, known_users
):
    await make_user(db, "hal")
    other_instance = create_app(settings, pools, instance_name="other-instance")
    async with other_instance.test_app():
        await wait_until(lambda: _listening(known_users))
        here = make_browser()
        await here.login("hal")
        assert (await here.get("/settings")).status_code == 200  # remembered here now
        there = Browser(other_instance.test_client())
        await there.login("hal")
        response = await there.post(
            "/settings/password",
            {"current_password": DEFAULT_PASSWORD, "new_password": "changed elsewhere"},
        )
        assert response.status_code == 303
        await wait_until(lambda: _status_is(here, "/settings", 303))
        assert (await there.get("/settings")).status_code == 200


async def test_a_session_started_elsewhere_is_honoured_here_before_that_is_heard_of(
    app, make_browser, db, known_users
):
    user = await make_user(db)
    phone = make_browser()
    await phone.sign_in(user)
    await wait_until(lambda: _listening(known_users))
    assert (await phone.get("/settings")).status_code == 200  # the account is kept here now
    # A log-in through another instance, whose notification has not reached this one: the
    # kept account does not hold the new session, and the log-in's redirect lands here.
    laptop = make_browser()
    await laptop.sign_in(user)
    assert [(await laptop.get("/settings")).status_code for _ in range(2)] == [200, 200]
    assert (await phone.get("/settings")).status_code == 200


async def test_a_lost_listener_stops_remembering_until_it_is_back(
    app, browser, db, server_url, known_users
):
    user = await make_user(db)
    await browser.sign_in(user)
    await wait_until(lambda: _listening(known_users))
    assert await _unread_badge(browser) is None
    admin = await asyncpg.connect(server_url)
    try:
        terminated = await admin.fetchval(
            """
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = $1 AND application_name = 'microblog web listener'
            """,
            await db.fetchval("SELECT current_database()"),
        )
    finally:
        await admin.close()
    assert terminated == 1
    # Changes made while no one listens are missed: what was remembered is dropped.
    await _set_unread_unannounced(db, user.id, 2)
    await wait_until(lambda: _badge_is(browser, "2"))
    await wait_until(lambda: _listening(known_users))  # reconnected by itself
    assert await _unread_badge(browser) == "2"
    await _set_unread_unannounced(db, user.id, 5)
    assert await _unread_badge(browser) == "2"  # remembered again


async def test_emptying_the_table_forgets_every_row(app, browser, db, known_users):
    user = await make_user(db)
    await browser.sign_in(user)
    await wait_until(lambda: _listening(known_users))
    assert (await browser.get("/settings")).status_code == 200
    await db.execute("TRUNCATE users CASCADE")
    await wait_until(lambda: _status_is(browser, "/settings", 303))


async def test_a_row_read_while_it_changes_is_not_kept(pools, db):
    user = await make_user(db)
    known = KnownUsers()
    stop = asyncio.Event()
    listener = asyncio.create_task(
        listen(pools.primary_url, [known.channel()], stop, name="user listener")
    )
    try:
        await wait_until(lambda: _listening(known))
        read_started, changed = asyncio.Event(), asyncio.Event()

        async def read_overtaken_by_a_change(user_id: int) -> Account | None:
            account = await account_by_id(db, user_id)
            read_started.set()
            await changed.wait()
            return account

        async def read_again(user_id: int) -> Account | None:
            account = await account_by_id(db, user_id)
            return replace(account, user=replace(account.user, bio="read again"))

        async def bio(load) -> str:
            return (await known.get(user.id, load)).user.bio

        reading = asyncio.create_task(known.get(user.id, read_overtaken_by_a_change))
        await read_started.wait()
        known.forget(user.id)  # as a write here, or a notification, does
        changed.set()
        assert (await reading).user.bio == ""  # this request has the row it read
        assert await bio(read_again) == "read again"  # nobody keeps it
        assert await bio(read_again) == "read again"  # the fresh one is
    finally:
        stop.set()
        await listener


async def _listening(known: KnownUsers) -> bool:
    return known.listening


async def _badge_is(browser: Browser, expected: str) -> bool:
    return await _unread_badge(browser) == expected


async def _status_is(browser: Browser, path: str, expected: int) -> bool:
    return (await browser.get(path)).status_code == expected
