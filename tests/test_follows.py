"""Following and unfollowing, the counts on users, and the follower and following lists."""

from __future__ import annotations

import re

import pytest

from microblog.db.transactions import without_duties
from microblog.follows.queries import follow
from microblog.web.pagination import PAGE_SIZE
from tests.conftest import HTMX, make_user

pytestmark = pytest.mark.both_layouts


def listed(html: str) -> list[str]:
    """Usernames in a follower or following list, in page order."""
    return re.findall(r'<span class="handle">@(\w+)</span>', html)


async def follow_counts(db, *users) -> list[tuple[int, int]]:
    """(follower_count, following_count) of each user."""
    rows = [
        await db.fetchrow(
            "SELECT follower_count, following_count FROM users WHERE id = $1", user.id
        )
        for user in users
    ]
    return [(row["follower_count"], row["following_count"]) for row in rows]


async def follows(db, follower, *followees) -> None:
    async with without_duties(db):
        for followee in followees:
            await follow(db, follower.id, followee.id)


async def test_follow_is_idempotent_and_counted_on_both_users(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    await browser.sign_in(alice)
    for _ in range(2):
        response = await browser.post("/@bob/follow")
        assert response.status_code == 303
        assert response.headers["Location"] == "/@bob"
    assert await db.fetchval("SELECT count(*) FROM follows") == 1
    assert await follow_counts(db, alice, bob) == [(0, 1), (1, 0)]
    profile = await browser.text("/@bob")
    assert 'action="/@bob/unfollow"' in profile
    assert "<strong>1</strong> follower<" in profile


async def test_unfollow_is_idempotent_and_counted_on_both_users(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    await follows(db, alice, bob)
    await browser.sign_in(alice)
    for _ in range(2):
        response = await browser.post("/@BOB/unfollow", {"next": "/public"})
        assert response.status_code == 303
        assert response.headers["Location"] == "/public"
    assert await db.fetchval("SELECT count(*) FROM follows") == 0
    assert await follow_counts(db, alice, bob) == [(0, 0), (0, 0)]
    assert 'action="/@bob/follow"' in await browser.text("/@bob")


async def test_following_yourself_is_422_in_any_letter_case_and_writes_nothing(browser, db):
    alice = await make_user(db, "alice")
    await browser.sign_in(alice)
    for path in ("/@alice/follow", "/@ALICE/follow", "/@alice/unfollow"):
        response = await browser.post(path)
        assert response.status_code == 422, path
        assert "You cannot follow yourself." in await response.get_data(as_text=True)
    assert await db.fetchval("SELECT count(*) FROM follows") == 0
    assert await follow_counts(db, alice) == [(0, 0)]
    assert 'action="/@alice/follow"' not in await browser.text("/@alice")  # no button to press


async def test_follow_is_404_and_writes_nothing_when_the_user_does_not_exist(browser, db):
    alice = await make_user(db, "alice")
    await browser.sign_in(alice)
    for path in ("/@nobody/follow", "/@nobody/unfollow"):
        response = await browser.post(path)
        assert response.status_code == 404, path
        assert "There is no one called @nobody here." in await response.get_data(as_text=True)
    assert await db.fetchval("SELECT count(*) FROM follows") == 0
    assert await follow_counts(db, alice) == [(0, 0)]


async def test_follow_sends_a_visitor_to_log_in_first(browser, db):
    await make_user(db, "bob")
    response = await browser.post("/@bob/follow")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")
    assert await db.fetchval("SELECT count(*) FROM follows") == 0


async def test_follow_through_htmx_answers_the_pressed_button_and_fresh_counts(browser, db):
    alice, bob = await make_user(db, "alice"), await make_user(db, "bob")
    await browser.sign_in(alice)
    response = await browser.post("/@bob/follow", headers=HTMX)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in html
    assert 'action="/@bob/unfollow"' in html
    assert 'aria-pressed="true"' in html
    assert 'id="profile-counts" hx-swap-oob="true"' in html
    assert "<strong>1</strong> follower<" in html
    response = await browser.post("/@bob/unfollow", headers=HTMX)
    html = await response.get_data(as_text=True)
    assert 'action="/@bob/follow"' in html
    assert "<strong>0</strong> followers" in html
    assert await follow_counts(db, alice, bob) == [(0, 0), (0, 0)]


async def test_lists_show_the_most_recent_follow_first(browser, db):
    bob = await make_user(db, "bob")
    fans = [await make_user(db, name) for name in ("carol", "dave", "erin")]
    for fan in fans:
        await follows(db, fan, bob)
    await follows(db, bob, fans[1], fans[0])
    assert listed(await browser.text("/@bob/followers")) == ["erin", "dave", "carol"]
    assert listed(await browser.text("/@Bob/following")) == ["carol", "dave"]
    assert listed(await browser.text("/@erin/followers")) == []
    assert "No followers yet." in await browser.text("/@erin/followers")


async def test_lists_page_by_follow_id_with_before_cursor(browser, db):
    star = await make_user(db, "star")
    people = [await make_user(db, f"p{n:02}") for n in range(PAGE_SIZE + 1)]
    for person in people:  # each follows the star, and the star follows each, in this order
        await follows(db, person, star)
    await follows(db, star, *people)
    newest_first = [person.username for person in reversed(people)]
    for list_name in ("followers", "following"):
        page = await browser.text(f"/@star/{list_name}")
        assert listed(page) == newest_first[:PAGE_SIZE], list_name
        cursor = re.search(r'href="\?before=(\d+)"', page)
        assert cursor, list_name
        assert 'hx-target="closest li"' in page
        assert f'hx-get="?before={cursor[1]}"' in page
        on_page = {**HTMX, "HX-Current-URL": f"http://localhost/@star/{list_name}"}
        rest = await browser.get(f"/@star/{list_name}?before={cursor[1]}", headers=on_page)
        html = await rest.get_data(as_text=True)
        assert "<html" not in html
        assert "HX-Request" in rest.headers["Vary"]
        assert listed(html) == newest_first[PAGE_SIZE:], list_name
        assert "?before=" not in html
        # Infinite scroll leaves an address that shows both pages, for Back to come back to.
        assert rest.headers["HX-Replace-Url"] == f"/@star/{list_name}?pages=2"
        assert listed(await browser.text(rest.headers["HX-Replace-Url"])) == newest_first


async def test_lists_are_404_for_an_unknown_user_and_400_for_a_garbage_cursor(browser, db):
    await make_user(db, "bob")
    for list_name in ("followers", "following"):
        assert (await browser.get(f"/@nobody/{list_name}")).status_code == 404
        for cursor in ("abc", "-1", "0", "99999999999999999999", "1e3"):
            response = await browser.get(f"/@bob/{list_name}?before={cursor}")
            assert response.status_code == 400, (list_name, cursor)
