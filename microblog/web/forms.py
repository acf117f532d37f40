"""Input hygiene shared by every form: text PostgreSQL can store, and safe redirect targets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from quart import Request, request

# C0 controls other than tab, newline and carriage return, DEL, and lone surrogates: none of
# them belong in a name, a password or a post, and NUL cannot even be stored in a text column.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_FORBIDDEN_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def requests_limited(larger: Mapping[str, int]) -> type[Request]:
    """The app's requests, their bodies limited by MAX_CONTENT_LENGTH, but for POSTs to the
    paths of `larger`, which may be as large as it says (a post with its pictures).

    The limit is the request's from its first byte: Quart bounds the body as it arrives, and
    by the limit the request was made with."""

    class Limited(Request):
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            limit = larger.get(path) if method == "POST" else None
            if limit is not None:
                kwargs["max_content_length"] = limit
            super().__init__(method, scheme, path, *args, **kwargs)
            if limit is not None:
                self.max_content_length = limit  # the form parser's bound

    return Limited


async def read_body_first() -> None:
    """Read the body of a state-changing request before any view runs.

    The size limit (MAX_CONTENT_LENGTH) bites only when the body is read, and some views read
    their form only after committing (for `next`): an oversized request would get its 413 after
    its write. Read here, it is refused before anything happens.
    """
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        await request.get_data(parse_form_data=True)


def has_forbidden_characters(value: str, *, multiline: bool = True) -> bool:
    pattern = _FORBIDDEN if multiline else _FORBIDDEN_IN_LINE
    return pattern.search(value) is not None


def storable(value: str) -> str:
    """value with every character a text column cannot hold (NUL, lone surrogates) replaced."""
    return _FORBIDDEN_IN_LINE.sub("\ufffd", value)


def local_path(target: str | None, default: str = "/") -> str:
    """target if it is a path on this site, else default: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or has_forbidden_characters(target, multiline=False):
        return default
    return target


def site_path(url: str | None) -> str | None:
    """The path and query of a URL on this site, or None when it is elsewhere or unreadable.

    Referer and HX-Current-URL are whatever the client wrote, and urlsplit raises on some of
    them (an unclosed "[" reads as a broken IPv6 host): a bad header must not be a 500.
    """
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return None
    if parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def referrer_path(default: str = "/") -> str:
    """The page the request came from, when it is on this site."""
    path = site_path(request.referrer)
    return default if path is None else local_path(path, default)
