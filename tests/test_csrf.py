"""Every state-changing route refuses a request without the session's CSRF token."""

from __future__ import annotations

import pytest
from quart import session

from microblog.web.csrf import SESSION_KEY
from microblog.web.templating import page_forms
from tests.conftest import make_post, make_user

SAFE = {"GET", "HEAD", "OPTIONS"}


def _state_changing_rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - SAFE):
            yield rule, method


def _concrete_path(rule, post_id: int, username: str) -> str:
    values = {"post_id": post_id, "username": username, "job_id": 1, "name": "trim-cache"}
    return rule.build({arg: values[arg] for arg in rule.arguments})[1]


async def test_the_app_has_state_changing_routes_to_check(app):
    assert len(list(_state_changing_rules(app))) >= 10


@pytest.mark.parametrize("token", ["missing", "forged", "other-session"])
async def test_every_state_changing_route_refuses_a_bad_token(
    app, browser, make_browser, db, token
):
    owner = await make_user(db, "owner")
    await make_user(db, "target")
    post_id = await make_post(db, owner, "keep me")
    await browser.login("owner")
    other = make_browser()
    other_token = await other.csrf_token()
    before = (
        await db.fetchval("SELECT row(count(*), sum(like_count), sum(reply_count)) FROM posts"),
        await db.fetchval("SELECT count(*) FROM follows"),
    )

    checked = 0
    for rule, method in _state_changing_rules(app):
        path = _concrete_path(rule, post_id, "target")
        form = {"body": "sneaky", "username": "owner", "password": "x" * 10}
        if token == "forged":
            form["csrf_token"] = "forged-token-value"
        elif token == "other-session":
            form["csrf_token"] = other_token
        response = await browser.client.open(path, method=method, form=form)
        assert response.status_code == 403, f"{method} {path} answered {response.status_code}"
        checked += 1

    assert checked >= 10
    after = (
        await db.fetchval("SELECT row(count(*), sum(like_count), sum(reply_count)) FROM posts"),
        await db.fetchval("SELECT count(*) FROM follows"),
    )
    assert after == before
    assert (await browser.get("/settings")).status_code == 200  # still logged in


async def test_htmx_header_token_is_accepted(browser, db):
    user = await make_user(db, "hx")
    post_id = await make_post(db, user, "like me")
    await browser.login("hx")
    token = await browser.csrf_token()
    response = await browser.client.post(
        f"/posts/{post_id}/like", headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert response.status_code == 200
    assert await db.fetchval("SELECT like_count FROM posts WHERE id = $1", post_id) == 1


async def test_non_ascii_token_is_refused_not_crashed(browser, db):
    await make_user(db, "uni")
    await browser.login("uni")
    response = await browser.client.post("/posts", form={"body": "x", "csrf_token": "tökén"})
    assert response.status_code == 403


async def test_a_page_left_open_when_its_session_logged_out_is_told_to_log_in_again(browser, db):
    """Logged out in one tab, a Like or a Post in another: not "this form has expired"."""
    post_id = await make_post(db, await make_user(db, "tabs"), "like me")
    await browser.login("tabs")
    token = await browser.csrf_token()
    assert (await browser.client.post("/logout", form={"csrf_token": token})).status_code == 303
    on_page = {"X-CSRF-Token": token, "HX-Request": "true", "HX-Current-URL": "http://localhost/"}
    liked = await browser.client.post(f"/posts/{post_id}/like", headers=on_page)
    assert liked.status_code == 401
    assert liked.headers["HX-Retarget"] == "#messages"
    fragment = await liked.get_data(as_text=True)
    assert "<strong>Logged out.</strong>" in fragment
    assert '<a href="/login?next=/">Log in again</a>' in fragment
    posted = await browser.client.post(
        "/posts",
        form={"body": "typed", "csrf_token": token},
        headers={"Referer": "http://localhost/@tabs"},
    )
    assert posted.status_code == 303
    assert posted.headers["Location"] == "/login?next=/@tabs"
    assert await db.fetchval("SELECT row(count(*), sum(like_count)) FROM posts") == (1, 0)


async def test_a_token_of_an_ended_session_still_counts_as_forged_anywhere_else(
    browser, make_browser, db
):
    await make_user(db, "tabs")
    other = make_browser()
    await other.login("tabs")
    token = await other.csrf_token()
    await other.client.post("/logout", form={"csrf_token": token})
    await browser.csrf_token()  # a session of its own, which never had that token
    response = await browser.client.post(
        "/posts", headers={"X-CSRF-Token": token, "HX-Request": "true"}, form={"body": "x"}
    )
    assert response.status_code == 403
    # And in the browser that logged out, after logging in again, it is just stale.
    await other.login("tabs")
    response = await other.client.post("/posts", form={"body": "x", "csrf_token": token})
    assert response.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM posts") == 0


async def test_the_form_fields_of_a_page_follow_a_token_changed_during_the_request(app):
    # page_forms() makes a page's fields once; a request that changed the session's token
    # after that (a log-in starts a new session) must not go on handing out the old one.
    async with app.test_request_context("/?before=5"):
        first = str(page_forms().hidden)
        assert page_forms() is page_forms()
        session[SESSION_KEY] = "a-token-made-later"
        later = str(page_forms().hidden)
    assert 'name="next" value="/?before=5"' in first
    assert 'value="a-token-made-later"' in later
    assert 'value="a-token-made-later"' not in first
