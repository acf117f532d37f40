"""Sign-up, log-in, log-out, password change and the signed session cookie."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from microblog.users import passwords
from microblog.web.sessions import SESSION_LIFETIME
from tests.conftest import DEFAULT_PASSWORD, make_post, make_user


async def test_signup_logs_in_and_redirects_home(browser, db):
    response = await browser.post("/signup", {"username": "alice", "password": "s3cret-pass"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = await browser.text("/")
    assert "@alice" in home
    assert "Log out" in home
    assert await db.fetchval("SELECT count(*) FROM users WHERE username = 'alice'") == 1


async def test_signup_rejects_taken_username_in_any_case(browser, db):
    await make_user(db, "Alice")
    response = await browser.post("/signup", {"username": "aLICE", "password": "s3cret-pass"})
    assert response.status_code == 422
    assert "That username is taken." in await response.get_data(as_text=True)
    assert await db.fetchval("SELECT count(*) FROM users") == 1


async def test_signup_keeps_input_and_says_what_is_wrong_without_repeating_the_hints(browser, db):
    response = await browser.post("/signup", {"username": "bad name!", "password": "short"})
    page = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="bad name!"' in page
    # Each rule is stated once, by the hint; the error says what this input breaks.
    assert page.lower().count("1 to 30 letters, digits or underscores") == 1
    assert page.lower().count("at least 8 characters") == 1
    assert "Spaces and “!” cannot be part of a username." in page
    assert "That one has only 5 characters; use at least 8." in page
    too_long = await browser.post("/signup", {"username": "a" * 31, "password": "long enough"})
    assert "That one is 31 characters long; the limit is 30." in await too_long.get_data(
        as_text=True
    )
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_login_failure_says_the_same_for_unknown_user_and_wrong_password(browser, db):
    await make_user(db, "bob")
    wrong_password = await browser.post("/login", {"username": "bob", "password": "nope-nope"})
    unknown_user = await browser.post("/login", {"username": "nobody", "password": "nope-nope"})
    assert wrong_password.status_code == unknown_user.status_code == 422
    for response in (wrong_password, unknown_user):
        assert "Wrong username or password." in await response.get_data(as_text=True)


async def test_login_is_case_insensitive_and_follows_local_next(browser, db):
    await make_user(db, "Carol")
    response = await browser.post(
        "/login", {"username": "carol", "password": DEFAULT_PASSWORD, "next": "/public"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/public"


async def test_login_never_redirects_off_site(browser, db):
    await make_user(db, "dave")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = await browser.post(
            "/login", {"username": "dave", "password": DEFAULT_PASSWORD, "next": target}
        )
        assert response.headers["Location"] == "/"


async def test_logout_ends_the_session(browser, db):
    await make_user(db, "erin")
    await browser.login("erin")
    await browser.post("/logout")
    response = await browser.get("/settings")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


async def test_a_copy_of_the_cookie_made_before_logging_out_is_worthless_after(
    app, browser, make_browser, db
):
    user = await make_user(db, "careful")
    phone = make_browser()
    await phone.login("careful")
    response = await browser.post("/login", {"username": "careful", "password": DEFAULT_PASSWORD})
    copied = response.headers["Set-Cookie"].split(";", 1)[0]
    token = await browser.csrf_token()
    assert (await browser.post("/logout")).status_code == 303

    thief = app.test_client(use_cookies=False)
    settings = await thief.get("/settings", headers={"Cookie": copied})
    assert settings.status_code == 303
    assert settings.headers["Location"].startswith("/login")
    posted = await thief.post(
        "/posts", form={"body": "not mine", "csrf_token": token}, headers={"Cookie": copied}
    )
    assert posted.status_code == 303
    assert posted.headers["Location"].startswith("/login")
    assert await db.fetchval("SELECT count(*) FROM posts") == 0
    # Logging out ended that one session: the account's others go on.
    assert (await phone.get("/settings")).status_code == 200
    assert await db.fetchval("SELECT count(*) FROM user_sessions WHERE user_id = $1", user.id) == 1


async def test_a_log_in_deletes_the_accounts_sessions_older_than_a_cookie_lives(browser, db):
    user = await make_user(db, "returning")
    await db.execute(
        "INSERT INTO user_sessions (user_id, created_at) VALUES ($1, now() - $2::interval)",
        user.id,
        SESSION_LIFETIME + timedelta(minutes=1),
    )
    await browser.login("returning")
    ages = await db.fetch("SELECT now() - created_at AS age FROM user_sessions")
    assert [row["age"] < timedelta(minutes=1) for row in ages] == [True]


async def test_get_logout_asks_with_a_log_out_button_instead_of_refusing(browser, db):
    await make_user(db, "leaving")
    assert "You are logged out" in await browser.text("/logout")
    await browser.login("leaving")
    page = await browser.text("/logout")
    form = page[page.index('<section class="card narrow"') :].split("</form>")[0]
    assert '<form method="post" action="/logout">' in form
    assert 'name="csrf_token"' in form
    assert '<button type="submit" class="button">Log out</button>' in form
    assert (await browser.get("/settings")).status_code == 200  # asking did not log out
    assert (await browser.post("/logout")).status_code == 303
    assert (await browser.get("/settings")).status_code == 303


async def test_an_htmx_action_after_the_session_ended_offers_to_log_in_again(
    browser, make_browser, db
):
    """The page stays, with whatever was half-written in it: no redirect, which the browser
    would follow inside htmx's request and swap the log-in page into the button pressed."""
    post = await make_post(db, await make_user(db, "ended"), "like me")
    await browser.login("ended")
    elsewhere = make_browser()
    await elsewhere.login("ended")
    changed = await elsewhere.post(
        "/settings/password", {"current_password": DEFAULT_PASSWORD, "new_password": "a new one!"}
    )
    assert changed.status_code == 303  # which logs out every other session
    on_page = {"HX-Request": "true", "HX-Current-URL": "http://localhost/?before=9"}
    response = await browser.post(f"/posts/{post}/like", headers=on_page)
    assert response.status_code == 401
    assert "Location" not in response.headers
    assert response.headers["HX-Retarget"] == "#messages"
    fragment = await response.get_data(as_text=True)
    assert "<strong>Logged out.</strong>" in fragment
    assert '<a href="/login?next=/?before%3D9">Log in again</a>' in fragment
    assert await db.fetchval("SELECT count(*) FROM likes") == 0


async def test_session_cookie_is_httponly_and_samesite_lax(browser, db):
    await make_user(db, "frank")
    response = await browser.post("/login", {"username": "frank", "password": DEFAULT_PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development: plain http on localhost


async def test_password_change_logs_out_every_other_session(make_browser, db):
    await make_user(db, "gina")
    laptop, phone = make_browser(), make_browser()
    await laptop.login("gina")
    await phone.login("gina")
    response = await laptop.post(
        "/settings/password",
        {"current_password": DEFAULT_PASSWORD, "new_password": "a brand new one"},
    )
    assert response.status_code == 303
    assert (await laptop.get("/settings")).status_code == 200  # this session stays
    assert (await phone.get("/settings")).status_code == 303  # the other one is gone
    await phone.login("gina", "a brand new one")


async def test_password_change_names_the_account_for_password_managers(browser, db):
    await make_user(db, "keeper")
    await browser.login("keeper")
    page = await browser.text("/settings")
    form = page[page.index('action="/settings/password"') :].split("</form>")[0]
    assert (
        '<input type="text" name="username" value="keeper" autocomplete="username" hidden>' in form
    )
    assert 'autocomplete="current-password"' in form
    assert 'autocomplete="new-password"' in form


async def test_password_change_requires_the_current_password(browser, db):
    await make_user(db, "hank")
    await browser.login("hank")
    response = await browser.post(
        "/settings/password", {"current_password": "wrong one!", "new_password": "another one"}
    )
    assert response.status_code == 422
    assert "That is not your current password." in await response.get_data(as_text=True)


async def test_profile_settings_are_saved_and_validated(browser, db):
    user = await make_user(db, "iris")
    await browser.login("iris")
    response = await browser.post(
        "/settings", {"display_name": "Iris W.", "bio": "Hi <b>there</b>"}
    )
    assert response.status_code == 303
    profile = await browser.text("/@iris")
    assert "Iris W." in profile
    assert "Hi &lt;b&gt;there&lt;/b&gt;" in profile
    too_long = await browser.post("/settings", {"display_name": "x" * 51, "bio": ""})
    assert too_long.status_code == 422
    assert await db.fetchval("SELECT display_name FROM users WHERE id = $1", user.id) == "Iris W."


async def test_a_bio_is_linked_like_a_post_on_the_profile_and_in_lists_of_people(
    browser, make_browser, db
):
    await make_user(db, "bob")
    writer = await make_user(db, "writer")
    await browser.sign_in(writer)
    bio = "Works with @bob and @nobody on #open-source, see www.example.org"
    assert (await browser.post("/settings", {"display_name": "", "bio": bio})).status_code == 303
    settings = await browser.text("/settings")
    assert "a #tag is letters, digits, _ and -." in settings
    fan = make_browser()
    await fan.sign_in(await make_user(db, "fan"))
    await fan.post("/@writer/follow")
    linked = (
        '<p class="bio" dir="auto">Works with <a class="mention" href="/@bob" dir="ltr">@bob</a>'
        ' and @nobody on <a class="hashtag" href="/tags/open-source" dir="auto">#open-source</a>,'
        ' see <a href="https://www.example.org" rel="nofollow noopener noreferrer ugc" dir="ltr">'
        "www.example.org</a></p>"
    )
    assert linked in await browser.text("/@writer")
    assert linked in await browser.text("/@fan/following")


class CountingHasher(PasswordHasher):
    """The app's hasher, counting the hashes it verifies."""

    def __init__(self) -> None:
        super().__init__()
        self.verified = 0

    def verify(self, hash, password):
        self.verified += 1
        return super().verify(hash, password)


@pytest.mark.parametrize(
    "username",
    ["known", "nobody", "not a username!", "x" * 31],
    ids=["wrong-password", "unknown-name", "not-a-name", "too-long"],
)
async def test_every_failed_login_verifies_one_hash_whether_or_not_the_name_exists(
    browser, db, monkeypatch, username
):
    """A log-in must take as long for a name that does not exist as for one that does, or its
    timing tells which names have accounts."""
    await make_user(db, "known")
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    response = await browser.post("/login", {"username": username, "password": "wrong guess"})
    assert response.status_code == 422
    assert hasher.verified == 1
