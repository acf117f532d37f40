"""How the text of a setting, or of a command-line argument, becomes a value.

Each parser takes the text and returns the value, or raises ValueError with a message for
the operator; microblog/config.py names the variable, the command line the argument.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from microblog.ratelimit.rules import Rule, parse_rules

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_SECRET_LENGTH = 32


def postgres_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a postgresql:// URL")
    try:
        parts.port  # noqa: B018 - evaluating it validates the port number
    except ValueError as error:
        raise ValueError(f"has a bad port ({error})") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("must name a host (postgresql://user:password@host:port/database)")
    return value


def origin(value: str) -> str:
    """An http(s) origin, scheme and host and maybe a port, without a trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// origin such as https://example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("must be only a scheme and host (and port), with no path")
    try:
        parts.port  # noqa: B018 - evaluating it validates the port number
    except ValueError as error:
        raise ValueError(f"has a bad port ({error})") from None
    return f"{parts.scheme}://{parts.netloc}"


def postgres_urls(value: str) -> tuple[str, ...]:
    """Comma-separated URLs. A multi-host URL (postgresql://host1,host2/db) stays one: a
    comma still inside a URL's host list does not start the next URL."""
    urls: list[str] = []
    for piece in (item.strip() for item in value.split(",")):
        if urls and "://" not in piece and not re.search(r"://[^/?]*[/?]", urls[-1]):
            urls[-1] += "," + piece
        elif piece:
            urls.append(piece)
    found = tuple(postgres_url(url) for url in urls)
    if len(set(found)) < len(found):
        raise ValueError("names the same server twice")
    return found


def whole_number(value: str, at_least: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"must be a whole number, got {value!r}") from None
    if number < at_least:
        raise ValueError(f"must be at least {at_least}, got {number}")
    return number


def positive_int(value: str) -> int:
    return whole_number(value, at_least=1)


def port_number(value: str) -> int:
    number = positive_int(value)
    if number > 65535:
        raise ValueError(f"must be a port number, 1 to 65535, got {number}")
    return number


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(value: str) -> float:
    """A duration: a number of seconds, or with a unit: 500ms, 5s, 10m, 2h, 7d."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*", value.lower())
    if not match:
        raise ValueError(f"must be a duration such as 5, 500ms, 10m or 7d, got {value!r}")
    return float(match[1]) * _UNITS[match[2] or "s"]


def queue_names(value: str) -> tuple[str, ...]:
    names = tuple(item.strip() for item in value.split(",") if item.strip())
    for name in names:
        if not re.fullmatch(r"[a-z0-9_-]{1,50}", name):
            raise ValueError(f"{name!r} is not a queue name (lower-case letters, digits, _ and -)")
    return names


def switch(value: str) -> bool:
    text = value.strip().lower()
    if text not in ("on", "off"):
        raise ValueError(f"must be on or off, got {value!r}")
    return text == "on"


def byte_size(value: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(b|kb|mb|gb)?\s*", value.lower())
    if not match:
        raise ValueError(f"must be a size such as 268435456, 512MB or 1GB, got {value!r}")
    number = int(match[1]) * {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}[match[2] or "b"]
    if number < 1:
        raise ValueError("must be at least 1 byte")
    return number


def rate_limit_rules(value: str) -> tuple[Rule, ...]:
    return tuple(parse_rules(value).values())


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = value.strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def networks(value: str) -> tuple[IPNetwork, ...]:
    networks = []
    for item in value.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{item.strip()!r} is not an IP network such as 10.0.0.0/8"
                ) from None
    return tuple(networks)


def secret(value: str) -> str:
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters long")
    return value


def secret_list(value: str) -> tuple[str, ...]:
    return tuple(secret(item.strip()) for item in value.split(",") if item.strip())


def directory(value: str) -> Path:
    return Path(value).expanduser().absolute()


def plain_text(value: str) -> str:
    return value.strip()
