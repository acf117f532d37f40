"""Signed-cookie sessions that any instance can read: the keys, the cookie, its verification.

Who the cookie says is logged in is users/sessions.py's business.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart.wrappers import BaseRequestWebsocket

from microblog.cache.recent import Recent
from microblog.config import Settings

SECRET_FILE = "secret_key"
# A session lasts this long from log-in, unless it is ended before.
SESSION_LIFETIME = timedelta(days=30)
# Session cookies each process remembers as verified: some megabytes.
VERIFIED_COOKIES = 10_000


def signing_keys(settings: Settings) -> tuple[str, list[str]]:
    """The current session key and the earlier ones still accepted."""
    key = settings.secret_key_base or development_secret(settings.data_dir)
    return key, list(settings.secret_key_fallbacks)


class CookieSessions(SecureCookieSessionInterface):
    """Quart's signed-cookie sessions, with each cookie verified once per process.

    A browser sends the same cookie with every request, and checking its signature and
    decoding it again each time cost a twentieth of a page's CPU. A cookie that verified once
    verifies again (the keys do not change while the app runs), so each process remembers what
    the cookies it saw lately hold and when they were signed; only their age is checked again,
    as itsdangerous checks it.
    """

    def __init__(self) -> None:
        self._serializer: URLSafeTimedSerializer | None = None
        self._verified: Recent[str, tuple[dict[str, Any], int]] = Recent(VERIFIED_COOKIES)

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        # Quart builds one for every request, though the keys cannot change.
        if self._serializer is None:
            self._serializer = super().get_signing_serializer(app)
        return self._serializer

    async def open_session(
        self, app: Quart, request: BaseRequestWebsocket
    ) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie is None:
            return self.session_class()
        verified = self._verified.get(cookie)
        if verified is None:
            try:
                data, signed = serializer.loads(cookie, return_timestamp=True)
            except BadSignature:
                return self.session_class()
            verified = self._verified[cookie] = (data, int(signed.timestamp()))
        data, signed_at = verified
        age = int(time.time()) - signed_at
        if not 0 <= age <= app.permanent_session_lifetime.total_seconds():
            return self.session_class()
        return self.session_class(data)  # a copy: the request may change its session


def development_secret(data_dir: Path) -> str:
    """Generated once into the data folder, so every local instance signs alike.

    The key is written to a file of this process's own, readable by its owner only from the
    moment it exists, then linked into place: the first process to link wins, and the others
    read the winner's complete file.
    """
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        candidate = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()
