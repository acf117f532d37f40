"""Bad input on every form and URL gets its 4xx, never a 500, and leaves the database as it was."""

from __future__ import annotations

import io
import json

import pytest
from werkzeug.datastructures import FileStorage

from microblog.app import LARGER_REQUESTS, MAX_REQUEST_BYTES
from microblog.db.transactions import without_duties
from microblog.follows.queries import follow
from microblog.posts.queries import like
from tests.conftest import DEFAULT_PASSWORD, make_post, make_user

RELATIONS = ("follow", "unfollow", "block", "unblock", "mute", "unmute")
HUGE_ID = "99999999999999999999"  # 20 digits: more than a bigint holds
BIGINT_PLUS_ONE = str(2**63)


@pytest.fixture
async def world(db, browser):
    """alice (logged in on `browser`) has a post liked by bob and follows him; bob has a post."""
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    post = await make_post(db, alice, "alice's #post")
    await make_post(db, bob, "bob's post", in_reply_to=post)
    async with without_duties(db):
        await like(db, bob.id, post)
        await follow(db, alice.id, bob.id)
    await browser.sign_in(alice)
    return {"alice": alice, "bob": bob, "post": post, "token": await browser.csrf_token()}


async def snapshot(db) -> dict[str, str]:
    """A digest of every row of the app's tables and of the job queue: any write shows up."""
    tables = await db.fetch(
        """
        SELECT format('%I.%I', table_schema, table_name) AS name FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'
          AND (table_schema = 'public' OR (table_schema, table_name) = ('infra', 'jobs'))
        ORDER BY 1
        """
    )
    digest = {}
    for table in tables:
        digest[table["name"]] = await db.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM {table['name']} t"
        )
    assert {"public.users", "public.posts"} <= digest.keys()
    return digest


async def send(browser, world, method: str, path: str, status: int, form=None, **kwargs):
    """One request with the session's CSRF token, expected to get exactly `status`."""
    data = {"csrf_token": world["token"], **(form or {})}
    if method == "GET":
        response = await browser.client.get(path, **kwargs)
    else:
        response = await browser.client.open(path, method=method, form=data, **kwargs)
    shown = {name: value[:40] for name, value in (form or {}).items()}
    assert response.status_code == status, f"{method} {path} {shown}: {response.status_code}"
    return response


async def test_bad_signups_are_422_and_create_no_account(make_browser, browser, db, world):
    visitor = make_browser()
    world = {**world, "token": await visitor.csrf_token()}
    before = await snapshot(db)
    good = "long enough"
    for form in (
        {},
        {"username": "newbie"},
        {"password": good},
        {"username": "", "password": good},
        {"username": "n" * 31, "password": good},
        {"username": "bad name", "password": good},
        {"username": "bad-name", "password": good},
        {"username": "ålice", "password": good},
        {"username": "nul\x00", "password": good},
        {"username": "<script>", "password": good},
        {"username": "newbie", "password": "7 chars"},
        {"username": "newbie", "password": "x" * 1025},
        {"username": "newbie", "password": "with\x00nul"},
        {"username": "newbie", "password": "with\nnewline"},
        {"username": "BOB", "password": good},  # taken, in another letter case
    ):
        await send(visitor, world, "POST", "/signup", 422, form)
    assert await snapshot(db) == before
    assert (await visitor.get("/settings")).status_code == 303  # still nobody


async def test_bad_logins_are_422_and_log_no_one_in(make_browser, browser, db, world):
    visitor = make_browser()
    world = {**world, "token": await visitor.csrf_token()}
    before = await snapshot(db)
    for form in (
        {},
        {"username": "alice"},
        {"password": DEFAULT_PASSWORD},
        {"username": "   ", "password": DEFAULT_PASSWORD},
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody", "password": DEFAULT_PASSWORD},
        {"username": "al\x00ice" + "e" * 5000, "password": DEFAULT_PASSWORD},
    ):
        await send(visitor, world, "POST", "/login", 422, form)
    assert await snapshot(db) == before
    assert (await visitor.get("/settings")).status_code == 303


async def test_bad_posts_are_422_and_write_nothing(browser, db, world):
    before = await snapshot(db)
    bodies = ("", "   ", "x" * 501, "😀" * 501, "nul\x00", "esc\x1b", "del\x7f")
    for body in bodies:
        await send(browser, world, "POST", "/posts", 422, {"body": body})
    await send(browser, world, "POST", "/posts", 422, {})
    await send(browser, world, "POST", "/posts?body=in+the+query", 422)
    # "\uff11" and "\u0661" are a full-width and an Arabic-Indic one: digits, but not ASCII.
    reply_targets = ("abc", "-1", "0", "1.5", "1e3", "\uff11", "\u0661", HUGE_ID, "424242")
    for reply_to in reply_targets:
        await send(browser, world, "POST", "/posts", 422, {"body": "hi", "in_reply_to": reply_to})
    assert await snapshot(db) == before


async def test_bad_profile_settings_are_422_and_change_nothing(browser, db, world):
    before = await snapshot(db)
    for form in (
        {"display_name": "n" * 51, "bio": ""},
        {"display_name": "😀" * 51, "bio": ""},
        {"display_name": "", "bio": "b" * 301},
        {"display_name": "nul\x00", "bio": ""},
        {"display_name": "two\nlines", "bio": ""},
        {"display_name": "tab\tbed", "bio": ""},
        {"display_name": "", "bio": "escape \x1b[2J"},
    ):
        await send(browser, world, "POST", "/settings", 422, form)
    assert await snapshot(db) == before


async def test_bad_password_changes_are_422_and_change_nothing(browser, db, world):
    before = await snapshot(db)
    new = "a fine new password"
    for form in (
        {},
        {"new_password": new},
        {"current_password": DEFAULT_PASSWORD},
        {"current_password": DEFAULT_PASSWORD, "new_password": "short"},
        {"current_password": DEFAULT_PASSWORD, "new_password": "x" * 1025},
        {"current_password": DEFAULT_PASSWORD, "new_password": "nul\x00 in it"},
        {"current_password": DEFAULT_PASSWORD, "new_password": "new\nline in it"},
        {"current_password": "not my password", "new_password": new},
    ):
        await send(browser, world, "POST", "/settings/password", 422, form)
    assert await snapshot(db) == before
    assert (await browser.get("/settings")).status_code == 200  # the session is still good


async def test_actions_on_posts_and_people_that_do_not_exist_are_404(browser, db, world):
    before = await snapshot(db)
    for action in ("like", "unlike", "repost", "unrepost", "delete"):
        await send(browser, world, "POST", f"/posts/424242/{action}", 404)
    for action in RELATIONS:
        await send(browser, world, "POST", f"/@nobody/{action}", 404)
    for path in (
        "/posts/424242",
        "/@nobody",
        "/@nobody/followers",
        "/@nobody/following",
        "/@nobody/block",
    ):
        await send(browser, world, "GET", path, 404)
    assert await snapshot(db) == before


async def test_malformed_post_ids_in_urls_are_404(browser, db, world):
    before = await snapshot(db)
    for bad_id in (HUGE_ID, BIGINT_PLUS_ONE, "0", "-1", "abc", "1.5", "1%00", "1%20"):
        await send(browser, world, "GET", f"/posts/{bad_id}", 404)
        for action in ("like", "unlike", "repost", "unrepost", "delete"):
            await send(browser, world, "POST", f"/posts/{bad_id}/{action}", 404)
    for digit_one in ("%EF%BC%91", "%D9%A1"):  # full-width and Arabic-Indic: digits, not ASCII
        await send(browser, world, "GET", f"/posts/{digit_one}", 404)
        await send(browser, world, "POST", f"/posts/{digit_one}/like", 404)
    assert await snapshot(db) == before


async def test_malformed_usernames_in_urls_are_404(browser, db, world):
    before = await snapshot(db)
    for name in ("b" * 31, "bad-name", "b%00b", "b%20ob", "%C3%A5lice", "bob%2Fx"):
        for suffix in ("", "/followers", "/following", "/feed.atom"):
            await send(browser, world, "GET", f"/@{name}{suffix}", 404)
        for action in RELATIONS:
            await send(browser, world, "POST", f"/@{name}/{action}", 404)
    assert await snapshot(db) == before


async def test_wrong_methods_are_405(browser, db, world):
    before = await snapshot(db)
    post = world["post"]
    # GET /posts/<id>/delete, /@<name>/block and /logout ask for confirmation: they are pages.
    for path in (
        *(f"/posts/{post}/{action}" for action in ("like", "unlike", "repost", "unrepost")),
        *(f"/@bob/{action}" for action in RELATIONS if action != "block"),
    ):
        await send(browser, world, "GET", path, 405)
    await send(browser, world, "POST", "/settings/blocks", 405)
    for method, path in (("GET", "/posts"), ("GET", "/settings/password"), ("PUT", "/posts")):
        await send(browser, world, method, path, 405)
    await send(browser, world, "DELETE", f"/posts/{post}", 405)
    assert await snapshot(db) == before


async def test_bodies_of_the_wrong_type_are_422_not_500(browser, db, world):
    before = await snapshot(db)
    token = {"X-CSRF-Token": world["token"]}
    as_json = {**token, "Content-Type": "application/json"}
    payload = json.dumps({"body": "hello", "username": "newbie", "password": "long enough"})
    for path in ("/posts", "/signup", "/settings/password"):
        response = await browser.client.post(path, data=payload, headers=as_json)
        assert response.status_code == 422, path
    as_text = {**token, "Content-Type": "text/plain"}
    response = await browser.client.post("/posts", data="body=hello", headers=as_text)
    assert response.status_code == 422
    upload = FileStorage(io.BytesIO(b"a file, not a field"), filename="body.txt")
    response = await browser.client.post("/posts", files={"body": upload}, headers=token)
    assert response.status_code == 422
    response = await browser.client.post(
        "/posts",
        data=b"--nope\r\nnot a multipart body",
        headers={**token, "Content-Type": "multipart/form-data; boundary=other"},
    )
    assert response.status_code == 422
    assert await snapshot(db) == before


async def test_bodies_over_their_limit_are_413_and_write_nothing(browser, db, world):
    """A mebibyte, but for a post's (which may carry its pictures)."""
    before = await snapshot(db)
    post = world["post"]
    paths = ("/signup", "/login", "/posts", "/settings", "/settings/password", "/@bob/follow")
    for path in (*paths, f"/posts/{post}/like", f"/posts/{post}/delete"):
        huge = "x" * LARGER_REQUESTS.get(path, MAX_REQUEST_BYTES)
        # The token in the form: the CSRF check is the first to read the body.
        await send(browser, world, "POST", path, 413, {"body": huge, "bio": huge})
        # The token in the header, as htmx sends it: the CSRF check never reads the body, and
        # some views read it only after their write (for `next`), or not at all (for htmx).
        for htmx in ("false", "true"):
            response = await browser.client.post(
                path,
                form={"body": huge},
                headers={"X-CSRF-Token": world["token"], "HX-Request": htmx},
            )
            assert response.status_code == 413, (path, htmx)
            assert "larger than this site accepts" in await response.get_data(as_text=True)
    upload = FileStorage(io.BytesIO(b"x" * (LARGER_REQUESTS["/posts"] + 1)), filename="big.txt")
    response = await browser.client.post(
        "/posts", files={"body": upload}, headers={"X-CSRF-Token": world["token"]}
    )
    assert response.status_code == 413
    assert await snapshot(db) == before


async def test_malformed_referer_and_htmx_current_url_headers_are_ignored(
    make_browser, browser, db, world
):
    before = await snapshot(db)
    broken_urls = ("http://[oops", "http://[::1/", "//[x", "not a url", "\u00ff")
    visitor = make_browser()
    token = await visitor.csrf_token()
    for url in broken_urls:
        # Logged out: the log-in redirect wants to come back to the referring page.
        response = await visitor.client.post(
            f"/posts/{world['post']}/like", form={"csrf_token": token}, headers={"Referer": url}
        )
        assert response.status_code == 303, url
        assert response.headers["Location"] == "/login?next=/"
        # htmx: forms in fragments come back to the page htmx says it is on.
        headers = {"HX-Request": "true", "HX-Current-URL": url}
        response = await browser.get(f"/public?before={world['post'] + 10}", headers=headers)
        assert response.status_code == 200, url
        # alice has not liked her post: unliking it changes nothing but renders the button.
        await send(browser, world, "POST", f"/posts/{world['post']}/unlike", 200, headers=headers)
    assert await snapshot(db) == before
