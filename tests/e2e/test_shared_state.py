"""Cache and rate limits shared by real instances: one instance's write is never hidden by
another's cache, and racing instances never admit more than a limit."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Launcher, Visitor, fetch_value, sign_up, wait_for

pytestmark = pytest.mark.process


def _anonymous(url: str, path: str) -> str:
    response = httpx.get(url + path)
    assert response.status_code == 200
    return response.text


def test_every_kind_of_write_is_visible_at_once_through_another_instances_cache(
    fresh_database: str, launcher: Launcher, pyz, workdir: Path
):
    env = pyz.env(DATABASE_URL=fresh_database)
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    reader, writer = launcher.web(cwd=workdir, env=env), launcher.web(cwd=workdir, env=env)
    with Visitor(httpx.Client(base_url=writer.url)) as author:
        sign_up(author, "author")
        author.submit("/", "/posts", body="first words")
        assert "first words" in _anonymous(reader.url, "/public")  # now cached on the reader
        assert "first words" in _anonymous(reader.url, "/public")

        author.submit("/", "/posts", body="second thoughts")
        assert "second thoughts" in _anonymous(reader.url, "/public")

        post_id = re.search(r'id="post-(\d+)"', _anonymous(reader.url, "/public")).group(1)
        liked = author.submit("/public", f"/posts/{post_id}/like")
        assert liked.status_code == 303
        assert 'aria-label="1 like"' in _anonymous(reader.url, "/public")

        renamed = author.submit("/settings", "/settings", display_name="Famous Author", bio="")
        assert renamed.status_code == 303
        assert "Famous Author" in _anonymous(reader.url, "/public")

        # The post page's Delete asks first, on a page of its own.
        deleted = author.submit(f"/posts/{post_id}/delete", f"/posts/{post_id}/delete")
        assert deleted.status_code == 303
        assert f'id="post-{post_id}"' not in _anonymous(reader.url, "/public")

        with Visitor(httpx.Client(base_url=writer.url)) as fan:
            sign_up(fan, "fan")
            fan.submit("/@author", "/@author/follow")
        assert re.search(r"<strong>1</strong> follower\b", _anonymous(reader.url, "/@author"))


LISTENING = """
    SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
    AND application_name = 'microblog web listener' AND query LIKE 'LISTEN%'
"""


@pytest.fixture
def two_listening(fresh_database: str, launcher: Launcher, pyz, workdir: Path):
    """Two instances on one database, each listening for changed users' rows."""
    env = pyz.env(DATABASE_URL=fresh_database)
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    instances = launcher.web(cwd=workdir, env=env), launcher.web(cwd=workdir, env=env)
    # Each instance keeps visitors' rows only while it listens for changes to them.
    wait_for(
        lambda: fetch_value(fresh_database, LISTENING) == 2, "both instances listening", within=30
    )
    return instances


def test_a_password_changed_through_one_instance_ends_sessions_on_another(two_listening):
    first, second = two_listening
    with (
        Visitor(httpx.Client(base_url=first.url)) as laptop,
        Visitor(httpx.Client(base_url=second.url)) as phone,
    ):
        sign_up(laptop, "mover")
        logged_in = phone.submit("/login", "/login", username="mover", password=PASSWORD)
        assert logged_in.status_code == 303
        assert "mover" in phone.page("/settings")  # the row is now kept on the second
        changed = laptop.submit(
            "/settings", "/settings/password", current_password=PASSWORD,
            new_password="a new secret",
        )  # fmt: skip
        assert changed.status_code == 303
        wait_for(
            lambda: phone.http.get("/settings").status_code == 303,
            "the other session ended on the other instance",
            within=2,
        )
        assert laptop.http.get("/settings").status_code == 200


def test_logging_out_through_one_instance_makes_a_copy_of_the_cookie_worthless_on_another(
    two_listening, fresh_database: str
):
    first, second = two_listening
    with (
        Visitor(httpx.Client(base_url=first.url)) as laptop,
        Visitor(httpx.Client(base_url=second.url)) as phone,
    ):
        sign_up(laptop, "leaver")
        assert (
            phone.submit("/login", "/login", username="leaver", password=PASSWORD).status_code
            == 303
        )
        copied = dict(laptop.http.cookies)
        token = re.search(r'name="csrf_token" value="([^"]+)"', laptop.page("/")).group(1)
        with httpx.Client(base_url=second.url, cookies=copied) as thief:
            assert thief.get("/settings").status_code == 200  # the row is now kept there
            assert laptop.submit("/settings", "/logout").status_code == 303
            wait_for(
                lambda: thief.get("/settings").status_code == 303,
                "the copied cookie refused on the other instance",
                within=2,
            )
            posted = thief.post("/posts", data={"body": "not mine", "csrf_token": token})
            assert posted.status_code == 303
            assert posted.headers["location"].startswith("/login")
        assert fetch_value(fresh_database, "SELECT count(*) FROM posts") == 0
        assert phone.http.get("/settings").status_code == 200  # the other device stays in


LOGIN_LIMIT = 10


async def _login_attempts(urls: list[str], count: int, headers_for) -> list[int]:
    """count log-in attempts at once, spread over the instances; their status codes.

    The instances share their signing key (one data folder), so one session's CSRF token is
    good on all of them.
    """
    async with httpx.AsyncClient(timeout=20) as client:
        page = await client.get(f"{urls[0]}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

        async def attempt(n: int) -> int:
            form = {"username": f"nobody{n}", "password": "wrong password", "csrf_token": token}
            url = urls[n % len(urls)]
            response = await client.post(f"{url}/login", data=form, headers=headers_for(n))
            return response.status_code

        return list(await asyncio.gather(*(attempt(n) for n in range(count))))


@pytest.fixture
def limited_instances(fresh_database: str, launcher: Launcher, pyz, workdir: Path):
    def start(trusted_proxies: str) -> list[str]:
        # Per hour, not per minute: the limit admits one more every period / LOGIN_LIMIT,
        # which at 10/1m is every 6 s, and a busy machine can take longer than that to answer
        # all the attempts. At 10/1h only a race could admit more than the limit.
        env = pyz.env(
            DATABASE_URL=fresh_database,
            RATE_LIMITS=f"login_ip={LOGIN_LIMIT}/1h,login_user=1000/1m,global_ip=10000/1m",
            TRUSTED_PROXIES=trusted_proxies,
        )
        assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
        return [launcher.web(cwd=workdir, env=env).url for _ in range(3)]

    return start


def test_sixty_racing_logins_over_three_instances_admit_exactly_the_limit(limited_instances):
    urls = limited_instances("127.0.0.1/32")
    codes = asyncio.run(_login_attempts(urls, 60, lambda n: {}))
    assert codes.count(429) == 60 - LOGIN_LIMIT, codes
    assert set(codes) == {422, 429}


def test_rotating_forwarded_for_from_an_untrusted_peer_changes_nothing(limited_instances):
    urls = limited_instances("10.0.0.0/8")  # loopback is not a trusted proxy here
    codes = asyncio.run(_login_attempts(urls, 30, lambda n: {"X-Forwarded-For": f"198.51.100.{n}"}))
    assert codes.count(429) == 30 - LOGIN_LIMIT


def test_through_a_trusted_proxy_each_forwarded_client_has_its_own_limit(limited_instances):
    urls = limited_instances("127.0.0.1/32")
    codes = asyncio.run(_login_attempts(urls, 30, lambda n: {"X-Forwarded-For": f"198.51.100.{n}"}))
    assert 429 not in codes
