"""Believe X-Forwarded-* only from trusted proxies.

An ASGI middleware rewrites the connection's client address and scheme before Quart sees the
request, so request.remote_addr, request.scheme and url building are right everywhere (sessions'
Secure flag, rate limits, logs). The client is the right-most X-Forwarded-For hop that is not a
trusted proxy: everything to its left was written by the client and proves nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from microblog.parsers import IPNetwork

Scope = dict[str, Any]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(address: str | None, trusted: Iterable[IPNetwork]) -> bool:
    ip = _address(address) if address else None
    return ip is not None and any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: Iterable[IPNetwork]) -> str:
    """The address of the client, given the TCP peer and the X-Forwarded-For hops."""
    trusted = tuple(trusted)
    if not is_trusted(peer, trusted):
        return peer
    client = peer
    for hop in reversed(forwarded_for):
        ip = _address(hop)
        if ip is None:
            break  # garbage from here leftwards: the last good hop is all we know
        client = str(ip)
        if not any(ip in network for network in trusted):
            break
    return client


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == name]
    return ",".join(values) if values else None


class ProxyHeadersMiddleware:
    def __init__(self, app: Any, trusted: Iterable[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer, port = scope["client"]
            if is_trusted(peer, self.trusted):
                scope = dict(scope)
                hops = [
                    h for h in (_header(scope, b"x-forwarded-for") or "").split(",") if h.strip()
                ]
                scope["client"] = (client_address(peer, hops, self.trusted), port)
                proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto
                host = (_header(scope, b"x-forwarded-host") or "").split(",")[-1].strip()
                if host:
                    scope["headers"] = [
                        (k, v) for k, v in scope["headers"] if k.lower() != b"host"
                    ] + [(b"host", host.encode("latin-1"))]
        await self.app(scope, receive, send)
