"""Rate limits: the atomic GCRA statement, and what a limited visitor sees."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import replace

import asyncpg
import pytest

from microblog.app import create_app
from microblog.ratelimit.rules import parse_rules
from microblog.ratelimit.store import Check, admit, prune
from tests.conftest import DEFAULT_PASSWORD, HTMX, UNREACHABLE, Browser, make_user

pytestmark = pytest.mark.both_layouts

TEN_PER_MINUTE = Check("login_ip:198.51.100.1", inverse=6.0, period=60.0)


async def _tat(conn, key: str):
    return await conn.fetchval("SELECT tat FROM infra.rate_limits WHERE key = $1", key)


async def test_a_burst_gets_exactly_the_limit(cache_db):
    verdicts = [(await admit(cache_db, [TEN_PER_MINUTE]))[0] for _ in range(12)]
    assert [v.admitted for v in verdicts] == [True] * 10 + [False] * 2
    assert verdicts[-1].retry_after(TEN_PER_MINUTE) == pytest.approx(6.0, abs=0.5)
    assert verdicts[0].remaining(TEN_PER_MINUTE) == 9


async def test_concurrent_checks_on_many_connections_never_admit_too_many(pools):
    async def attempt() -> bool:
        async with pools.cache.acquire() as conn:
            [verdict] = await admit(conn, [TEN_PER_MINUTE])
            return verdict.admitted

    results = await asyncio.gather(*(attempt() for _ in range(60)))
    assert sum(results) == 10


async def test_a_refused_check_changes_nothing_and_a_refused_request_counts_nowhere(cache_db):
    other = Check("login_user:mallory", inverse=12.0, period=60.0)  # 5 a minute
    for _ in range(10):
        await admit(cache_db, [TEN_PER_MINUTE])
    tat = await _tat(cache_db, TEN_PER_MINUTE.key)
    for _ in range(6):
        verdicts = await admit(cache_db, [TEN_PER_MINUTE, other])
        assert [(v.key, v.admitted) for v in verdicts] == [
            (TEN_PER_MINUTE.key, False),
            (other.key, True),
        ]
    assert await _tat(cache_db, TEN_PER_MINUTE.key) == tat
    # Six requests that `other` alone would have admitted five of: none of them counted.
    assert [(await admit(cache_db, [other]))[0].admitted for _ in range(6)] == [True] * 5 + [False]


async def test_pruning_deletes_only_keys_that_no_longer_limit(cache_db):
    await admit(cache_db, [TEN_PER_MINUTE])
    await cache_db.execute(
        "INSERT INTO infra.rate_limits VALUES ('old', now() - interval '1 s', '1 m')"
    )
    assert await prune(cache_db) == 1
    assert await cache_db.fetchval("SELECT count(*) FROM infra.rate_limits") == 1


@asynccontextmanager
async def _app_limited_by(settings, pools, rules: str):
    limited = type(settings)(
        **{**settings.__dict__, "rate_limits": tuple(parse_rules(rules).values())}
    )
    app = create_app(limited, pools, instance_name="limited")
    async with app.test_app():
        yield app


@pytest.fixture
async def strict_app(settings, pools):
    """The app with tight limits: 2 log-ins a minute per address, 2 sign-ups, 3 posts."""
    rules = "login_ip=2/1m,login_user=3/1m,signup_ip=2/1m,post_user=3/1m,global_ip=50/1m"
    async with _app_limited_by(settings, pools, rules) as app:
        yield app


def _from(address: str, **headers: str) -> dict:
    return {"scope_base": {"client": (address, 40000)}, "headers": headers}


async def test_a_limited_login_gets_429_with_headers_and_a_friendly_page(strict_app, db):
    await make_user(db, "victim")
    browser = Browser(strict_app.test_client())
    token = await browser.csrf_token()
    form = {"username": "victim", "password": "wrong password", "csrf_token": token}
    answers = [await browser.client.post("/login", form=form) for _ in range(3)]
    assert [a.status_code for a in answers] == [422, 422, 429]
    limited = answers[-1]
    wait = int(limited.headers["Retry-After"])
    assert wait >= 1
    assert limited.headers["RateLimit-Limit"] == "2"
    assert limited.headers["RateLimit-Remaining"] == "0"
    page = await limited.get_data(as_text=True)
    assert "Slow down" in page
    in_words = "a second" if wait == 1 else f"{wait} seconds"
    assert f"Too many requests. Try again in {in_words}." in page
    assert "<html" in page
    htmx = await browser.client.post("/login", form=form, headers=HTMX)
    assert htmx.status_code == 429
    assert "<html" not in await htmx.get_data(as_text=True)
    assert htmx.headers["HX-Retarget"] == "#messages"


async def test_a_limited_signup_writes_nothing(strict_app, db):
    browser = Browser(strict_app.test_client())
    codes = []
    for n in range(3):
        response = await browser.post("/signup", {"username": f"new{n}", "password": "long enough"})
        codes.append(response.status_code)
    assert codes == [303, 303, 429]
    assert await db.fetchval("SELECT count(*) FROM users") == 2


async def test_refused_signup_forms_do_not_count_against_the_accounts_an_address_may_make(
    strict_app, db
):
    await make_user(db, "taken")
    browser = Browser(strict_app.test_client())
    refused = [
        {"username": "taken", "password": "long enough"},
        {"username": "TAKEN", "password": "long enough"},
        {"username": "newcomer", "password": "short"},
        {"username": "not a name!", "password": "long enough"},
        {"username": "taken", "password": "long enough"},
    ]
    codes = [(await browser.post("/signup", form)).status_code for form in refused]
    assert codes == [422] * 5
    made = [await browser.post("/signup", {"username": f"made{n}", "password": "long enough"})
            for n in range(3)]  # fmt: skip
    assert [response.status_code for response in made] == [303, 303, 429]
    assert await db.fetchval("SELECT count(*) FROM users") == 3


async def test_racing_signups_from_one_address_make_no_more_accounts_than_the_limit(strict_app, db):
    client = strict_app.test_client()
    token = await Browser(client).csrf_token()

    async def sign_up(n: int) -> int:
        form = {"username": f"racer{n}", "password": "long enough", "csrf_token": token}
        return (await client.post("/signup", form=form)).status_code

    codes = await asyncio.gather(*(sign_up(n) for n in range(6)))
    assert sorted(codes) == [303, 303, 429, 429, 429, 429]
    assert await db.fetchval("SELECT count(*) FROM users") == 2


@pytest.fixture
async def login_limited_app(settings, pools):
    """Log-ins limited to 3 a minute per account and address, 6 per account from anywhere."""
    rules = "login_ip=100/1m,login_user_ip=3/1m,login_user=6/1m,global_ip=1000/1m"
    async with _app_limited_by(settings, pools, rules) as app:
        yield app


async def _log_in_from(app, address: str, username: str, password: str) -> int:
    client = app.test_client()
    token = await Browser(client).csrf_token()
    form = {"username": username, "password": password, "csrf_token": token}
    return (await client.post("/login", form=form, **_from(address))).status_code


async def test_failed_logins_from_one_address_do_not_lock_the_owner_out_from_theirs(
    login_limited_app, db
):
    await make_user(db, "owner")
    attacker = [
        await _log_in_from(login_limited_app, "203.0.113.5", "owner", "wrong password")
        for _ in range(10)
    ]
    assert attacker == [422] * 3 + [429] * 7
    assert await _log_in_from(login_limited_app, "198.51.100.7", "Owner", DEFAULT_PASSWORD) == 303


async def test_guessing_one_account_from_many_addresses_is_bounded(login_limited_app, db):
    await make_user(db, "target")
    codes = [
        await _log_in_from(login_limited_app, f"198.51.100.{n}", "target", "wrong password")
        for n in range(8)
    ]
    assert codes == [422] * 6 + [429] * 2


async def test_forwarded_for_from_an_untrusted_peer_does_not_change_identity(strict_app, db):
    client = strict_app.test_client()
    token = await Browser(client).csrf_token()
    form = {"username": "nobody", "password": "whatever1", "csrf_token": token}
    codes = []
    for n in range(3):
        spoofed = _from("203.0.113.5", **{"X-Forwarded-For": f"10.9.8.{n}"})
        codes.append((await client.post("/login", form=form, **spoofed)).status_code)
    assert codes == [422, 422, 429]


async def test_a_trusted_proxy_forwards_the_client_address(strict_app, db):
    client = strict_app.test_client()
    token = await Browser(client).csrf_token()
    codes = []
    for n in range(3):
        form = {"username": f"someone{n}", "password": "whatever1", "csrf_token": token}
        via_proxy = _from("127.0.0.1", **{"X-Forwarded-For": f"198.51.100.{n}"})
        codes.append((await client.post("/login", form=form, **via_proxy)).status_code)
    assert codes == [422, 422, 422]  # three different clients behind one proxy


async def test_ipv6_clients_share_a_limit_per_64(strict_app, db):
    client = strict_app.test_client()
    token = await Browser(client).csrf_token()
    codes = []
    for n in range(3):
        form = {"username": f"v6user{n}", "password": "whatever1", "csrf_token": token}
        codes.append(
            (await client.post("/login", form=form, **_from(f"2001:db8:1:2::{n + 1}"))).status_code
        )
    assert codes == [422, 422, 429]


async def test_posting_is_limited_per_user(strict_app, db):
    await make_user(db, "chatty")
    browser = Browser(strict_app.test_client())
    await browser.login("chatty")
    codes = [(await browser.post("/posts", {"body": f"post {n}"})).status_code for n in range(4)]
    assert codes == [303, 303, 303, 429]
    assert await db.fetchval("SELECT count(*) FROM posts") == 3


async def test_health_checks_and_static_files_are_never_limited(strict_app):
    client = strict_app.test_client()
    for _ in range(60):
        assert (await client.get("/up")).status_code == 200
    assert "RateLimit-Limit" not in (await client.get("/up")).headers


async def test_everything_else_shares_the_global_limit(strict_app):
    client = strict_app.test_client()
    codes = [(await client.get("/public")).status_code for _ in range(51)]
    assert codes == [200] * 50 + [429]


async def test_rate_limits_off_disables_every_limit(settings, pools):
    app = create_app(
        type(settings)(**{**settings.__dict__, "rate_limits": ()}), pools, instance_name="off"
    )
    async with app.test_app():
        client = app.test_client()
        for _ in range(20):
            response = await client.get("/public")
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


async def test_a_query_error_in_the_rate_limits_is_an_error_not_a_free_pass(strict_app, cache_db):
    await cache_db.execute("ALTER TABLE infra.rate_limits RENAME COLUMN tat TO renamed")
    client = strict_app.test_client()
    response = await client.get("/public")
    assert response.status_code == 500
    assert "Something went wrong" in await response.get_data(as_text=True)


async def test_unreachable_counters_admit_everyone(settings, pools, caplog):
    unreachable = await asyncpg.create_pool(UNREACHABLE, min_size=0, max_size=1)
    try:
        app = create_app(settings, replace(pools, cache=unreachable), instance_name="no-counters")
        async with app.test_app():
            client = app.test_client()
            responses = [await client.get("/public") for _ in range(3)]
    finally:
        await unreachable.close()
    assert [response.status_code for response in responses] == [200] * 3
    assert "RateLimit-Limit" not in responses[0].headers
    assert "rate limits unavailable; admitting" in caplog.text
