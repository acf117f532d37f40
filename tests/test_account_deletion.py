"""Deleting one's own account: behind the password, unusable at once on every session, erased
by a job with every count on others' rows kept right, and its username free afterwards."""

from __future__ import annotations

from io import BytesIO

from PIL import Image
from werkzeug.datastructures import FileStorage

from microblog.account_deletion.jobs import erase
from microblog.account_deletion.routes import WRONG_PASSWORD
from microblog.jobs.queue import enqueue
from microblog.users.queries import user_by_username
from tests.conftest import DEFAULT_PASSWORD, make_post, make_user
from tests.jobs.conftest import run_app_jobs


def _picture() -> FileStorage:
    out = BytesIO()
    Image.new("RGB", (40, 30), (0, 160, 0)).save(out, "PNG")
    return FileStorage(BytesIO(out.getvalue()), filename="p.png")


async def _counts(db, username: str) -> dict[str, int]:
    row = await db.fetchrow(
        """
        SELECT post_count, follower_count, following_count, unread_notifications
        FROM users WHERE username = $1
        """,
        username,
    )
    return dict(row)


async def _post_counts(db, post_id: int) -> tuple[int, int, int]:
    row = await db.fetchrow(
        "SELECT like_count, reply_count, repost_count FROM posts WHERE id = $1", post_id
    )
    return tuple(row)


async def test_settings_offer_it_and_a_wrong_password_deletes_nothing(browser, db):
    await make_user(db, "hesitant")
    await browser.login("hesitant")
    assert 'href="/settings/delete"' in await browser.text("/settings")
    page = await browser.text("/settings/delete")
    assert 'action="/settings/delete"' in page
    assert 'name="password"' in page
    for password in ("not my password", ""):
        response = await browser.post("/settings/delete", {"password": password})
        assert response.status_code == 422
        assert WRONG_PASSWORD in await response.get_data(as_text=True)
    assert await db.fetchval("SELECT deleted_at FROM users WHERE username = 'hesitant'") is None
    assert not await db.fetchval("SELECT count(*) FROM infra.jobs WHERE kind = 'accounts.erase'")
    assert (await browser.get("/settings")).status_code == 200  # still logged in


async def test_it_needs_the_csrf_token(browser, db):
    await make_user(db, "forged")
    await browser.login("forged")
    response = await browser.client.post("/settings/delete", form={"password": DEFAULT_PASSWORD})
    assert response.status_code == 403
    assert await db.fetchval("SELECT deleted_at FROM users WHERE username = 'forged'") is None


async def test_a_deleted_account_is_logged_out_everywhere_and_unusable_at_once(
    browser, make_browser, db
):
    await make_user(db, "leaving")
    other_session = make_browser()
    await browser.login("leaving")
    await other_session.login("leaving")
    response = await browser.post("/settings/delete", {"password": DEFAULT_PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/account-deleted"
    assert "Your account is deleted" in await browser.text("/account-deleted")
    # Before any job has run: no session is honoured, no log-in, no profile.
    for visitor in (browser, other_session):
        response = await visitor.get("/settings")
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/login")
    assert not await db.fetchval("SELECT count(*) FROM user_sessions")
    refused = await browser.post("/login", {"username": "leaving", "password": DEFAULT_PASSWORD})
    assert refused.status_code == 422
    assert (await browser.get("/@leaving")).status_code == 404


async def test_the_job_erases_everything_and_keeps_the_counts_of_others_right(
    browser, make_browser, db, pools
):
    gone = await make_user(db, "gone")
    ada = await make_user(db, "ada")
    await make_user(db, "bob")
    adas_post = await make_post(db, ada, "hello all")
    adas_own_reply = await make_post(db, ada, "and more", in_reply_to=adas_post)
    await browser.login("gone")
    for action in ("like", "repost"):
        assert (await browser.post(f"/posts/{adas_post}/{action}")).status_code == 303
    reply = {"body": "hi @ada", "in_reply_to": str(adas_post)}
    assert (await browser.post("/posts", reply)).status_code == 303
    assert (await browser.post("/@ada/follow")).status_code == 303
    with_picture = await browser.post(
        "/posts", {"body": "", "alt_1": "Green"}, files={"picture_1": _picture()}
    )
    assert with_picture.status_code == 303
    gones_post = await db.fetchval("SELECT post_id FROM post_pictures")
    assert (await browser.post(f"/posts/{gones_post}/like")).status_code == 303  # their own
    bob = make_browser()
    await bob.login("bob")
    assert (await bob.post("/@gone/follow")).status_code == 303
    assert (await bob.post("/@ada/follow")).status_code == 303
    for action in ("like", "repost"):
        assert (await bob.post(f"/posts/{gones_post}/{action}")).status_code == 303
    bobs_reply = await make_post(
        db, await user_by_username(db, "bob"), "nice", in_reply_to=gones_post
    )
    await run_app_jobs(pools)
    assert await _post_counts(db, adas_post) == (1, 2, 1)
    assert await _counts(db, "ada") == {
        "post_count": 2, "follower_count": 2, "following_count": 0,
        "unread_notifications": 5,  # gone's like, repost, reply, follow; bob's follow
    }  # fmt: skip
    assert await _counts(db, "bob") == {
        "post_count": 1, "follower_count": 0, "following_count": 2, "unread_notifications": 0
    }  # fmt: skip
    assert (await _counts(db, "gone"))["unread_notifications"] == 3  # bob's follow, like, repost

    response = await browser.post("/settings/delete", {"password": DEFAULT_PASSWORD})
    assert response.status_code == 303
    await run_app_jobs(pools)

    assert await _post_counts(db, adas_post) == (0, 1, 0)
    assert await _counts(db, "ada") == {
        "post_count": 2, "follower_count": 1, "following_count": 0, "unread_notifications": 1
    }  # fmt: skip
    assert await _counts(db, "bob") == {
        "post_count": 1, "follower_count": 0, "following_count": 1, "unread_notifications": 0
    }  # fmt: skip
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", gone.id) == 0
    for table, column in (
        ("posts", "author_id"), ("likes", "user_id"), ("reposts", "user_id"),
        ("follows", "follower_id"), ("follows", "followee_id"), ("user_sessions", "user_id"),
        ("notifications", "actor_id"), ("notifications", "recipient_id"),
    ):  # fmt: skip
        assert not await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", gone.id)
    assert not await db.fetchval("SELECT count(*) FROM post_pictures")
    # Replies of others to its posts stay, detached; so do ada's own.
    assert await db.fetchval("SELECT in_reply_to FROM posts WHERE id = $1", bobs_reply) is None
    assert await db.fetchval("SELECT in_reply_to FROM posts WHERE id = $1", adas_own_reply)
    # What ada is shown agrees with the counts.
    ada_browser = make_browser()
    await ada_browser.login("ada")
    assert "hi @ada" not in await ada_browser.text(f"/posts/{adas_post}")
    assert "hi @ada" not in await ada_browser.text("/public")
    # The name is free for anyone to take.
    newcomer = make_browser()
    taken = await newcomer.post("/signup", {"username": "gone", "password": "a new password"})
    assert taken.status_code == 303


async def test_a_second_run_of_the_job_changes_nothing(browser, db, pools):
    user = await make_user(db, "twice")
    await browser.login("twice")
    await browser.post("/settings/delete", {"password": DEFAULT_PASSWORD})
    await run_app_jobs(pools)
    await enqueue(db, erase, {"user_id": user.id})
    await run_app_jobs(pools)  # and it succeeds
    assert not await db.fetchval("SELECT count(*) FROM users")
