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

from microblog.cache.recent import Recent
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


FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
# Peers whose trust was decided lately: parsing the address and testing it against each
# network cost every request a few microseconds, and a site sees few proxies.
TRUST_DECISIONS = 4096


def _forwarded(scope: Scope) -> dict[bytes, str]:
    """The request's X-Forwarded-* headers, each one's values joined, in one pass."""
    found: dict[bytes, list[str]] = {}
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered in FORWARDED:
            found.setdefault(lowered, []).append(value.decode("latin-1"))
    return {name: ",".join(values) for name, values in found.items()}


class ProxyHeadersMiddleware:
    def __init__(self, app: Any, trusted: Iterable[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        self._peers: Recent[str, bool] = Recent(TRUST_DECISIONS)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer, port = scope["client"]
            if self._trusts(peer) and (forwarded := _forwarded(scope)):
                scope = dict(scope)
                hops = [h for h in forwarded.get(b"x-forwarded-for", "").split(",") if h.strip()]
                scope["client"] = (client_address(peer, hops, self.trusted), port)
                proto = forwarded.get(b"x-forwarded-proto", "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto
                host = forwarded.get(b"x-forwarded-host", "").split(",")[-1].strip()
                if host:
                    scope["headers"] = [
                        (k, v) for k, v in scope["headers"] if k.lower() != b"host"
                    ] + [(b"host", host.encode("latin-1"))]
        await self.app(scope, receive, send)

    def _trusts(self, peer: str) -> bool:
        trusted = self._peers.get(peer)
        if trusted is None:
            trusted = self._peers[peer] = is_trusted(peer, self.trusted)
        return trusted
