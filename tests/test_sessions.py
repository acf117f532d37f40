"""The signed session cookie: honoured while its signature and age hold, on every request.

Each process remembers the cookies it verified, so every check here runs twice: the first
request verifies the cookie, the second finds it remembered.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from microblog.users.queries import start_session
from microblog.users.sessions import EPOCH, SESSION_ID, USER_ID
from microblog.web import csrf, sessions
from microblog.web.sessions import SESSION_LIFETIME
from tests.conftest import make_user

DAY = 86400


def _serializer(app, signed_at: int | None = None) -> URLSafeTimedSerializer:
    """The app's own cookie serializer; with `signed_at`, one that backdates its signatures."""
    interface = app.session_interface
    if signed_at is None:
        return interface.get_signing_serializer(app)

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return signed_at

    return URLSafeTimedSerializer(
        app.secret_key,
        salt=interface.salt,
        serializer=interface.serializer,
        signer=Backdated,
        signer_kwargs={
            "key_derivation": interface.key_derivation,
            "digest_method": interface.digest_method,
        },
    )


async def _session_of(db, user) -> dict:
    """What the cookie of a fresh session of `user` holds."""
    session_id = await start_session(db, user.id, SESSION_LIFETIME)
    return {USER_ID: user.id, SESSION_ID: session_id, EPOCH: user.session_epoch}


async def _logged_in(app, cookie: str) -> bool:
    client = app.test_client(use_cookies=False)
    response = await client.get("/", headers={"Cookie": f"microblog_session={cookie}"})
    assert response.status_code == 200
    return 'action="/logout"' in await response.get_data(as_text=True)


async def test_a_valid_cookie_is_honoured_on_every_request(app, db):
    user = await make_user(db)
    cookie = _serializer(app).dumps(await _session_of(db, user))
    assert [await _logged_in(app, cookie) for _ in range(2)] == [True, True]


async def test_a_tampered_cookie_is_refused(app, db):
    user = await make_user(db)
    other = await make_user(db)
    cookie = _serializer(app).dumps(await _session_of(db, user))
    assert await _logged_in(app, cookie)
    forged = _serializer(app).dumps(await _session_of(db, other))
    payload, signature = forged.split(".", 1)[0], cookie.split(".", 1)[1]
    assert [await _logged_in(app, f"{payload}.{signature}") for _ in range(2)] == [False, False]


async def test_a_cookie_older_than_the_session_lifetime_is_refused(app, db):
    user = await make_user(db)
    data = await _session_of(db, user)
    now = int(time.time())
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    recent = _serializer(app, signed_at=now - lifetime + DAY).dumps(data)
    expired = _serializer(app, signed_at=now - lifetime - DAY).dumps(data)
    from_the_future = _serializer(app, signed_at=now + DAY).dumps(data)
    assert [await _logged_in(app, recent) for _ in range(2)] == [True, True]
    assert [await _logged_in(app, expired) for _ in range(2)] == [False, False]
    assert [await _logged_in(app, from_the_future) for _ in range(2)] == [False, False]


async def test_what_a_request_adds_to_its_session_stays_with_its_response(app, db):
    # A cookie without a CSRF token gets one on the first page that shows a form; the next
    # request with the same old cookie must start from what the cookie holds, not from that.
    user = await make_user(db)
    cookie = _serializer(app).dumps(await _session_of(db, user))
    tokens = []
    for _ in range(2):
        client = app.test_client(use_cookies=False)
        response = await client.get("/", headers={"Cookie": f"microblog_session={cookie}"})
        renewed = response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
        tokens.append(_serializer(app).loads(renewed)[csrf.SESSION_KEY])
    assert tokens[0] != tokens[1]


def _modes_while_creating(data_dir: Path) -> tuple[str, list[int]]:
    """The development secret, and the permission bits every file in `data_dir` had at each
    step of its creation (each file system call the creator made on its way)."""
    modes: list[int] = []
    watching = threading.get_ident()
    looking = False

    def look(event: str, _args: tuple) -> None:
        nonlocal looking
        if looking or threading.get_ident() != watching or not event.startswith(("open", "os.")):
            return
        looking = True  # the look itself makes calls that are audited
        try:
            with contextlib.suppress(FileNotFoundError):
                modes.extend(stat.S_IMODE(e.stat().st_mode) for e in os.scandir(data_dir))
        finally:
            looking = False

    _AUDIT.append(look)
    try:
        secret = sessions.development_secret(data_dir)
        look("os.done", ())
    finally:
        _AUDIT.remove(look)
    return secret, modes


# Audit hooks cannot be removed: one for the whole run, doing nothing unless a test asks.
_AUDIT: list = []
sys.addaudithook(lambda event, args: [hook(event, args) for hook in list(_AUDIT)])


def test_the_development_secret_is_never_readable_by_others(tmp_path):
    previous = os.umask(0o022)
    try:
        secret, modes = _modes_while_creating(tmp_path / "var")
    finally:
        os.umask(previous)
    assert len(secret) >= 32
    assert modes, "the creation was not observed"
    assert {mode & 0o077 for mode in modes} == {0}, [oct(mode) for mode in modes]


def test_concurrent_first_starts_agree_on_one_development_secret(tmp_path):
    data_dir = tmp_path / "var"
    creators = 8
    start = threading.Barrier(creators)

    def create() -> str:
        start.wait()
        return sessions.development_secret(data_dir)

    with ThreadPoolExecutor(creators) as pool:
        secrets_seen = set(pool.map(lambda _: create(), range(creators)))
    assert len(secrets_seen) == 1
    assert [path.name for path in data_dir.iterdir()] == [sessions.SECRET_FILE]
