"""Input hygiene shared by every form: text PostgreSQL can store, and safe redirect targets."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from quart import request

# C0 controls other than tab, newline and carriage return, DEL, and lone surrogates: none of
# them belong in a name, a password or a post, and NUL cannot even be stored in a text column.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_FORBIDDEN_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def has_forbidden_characters(value: str, *, multiline: bool = True) -> bool:
    pattern = _FORBIDDEN if multiline else _FORBIDDEN_IN_LINE
    return pattern.search(value) is not None


def local_path(target: str | None, default: str = "/") -> str:
    """target if it is a path on this site, else default: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or has_forbidden_characters(target, multiline=False):
        return default
    return target


def referrer_path(default: str = "/") -> str:
    """The page the request came from, when it is on this site."""
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host:
        return default
    return local_path(parts.path + (f"?{parts.query}" if parts.query else ""), default)
