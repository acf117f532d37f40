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
# Decisions made lately, by peer (trusted or not) and by peer and X-Forwarded-For (the client):
# parsing addresses and testing them against each network cost every request behind nginx
# about 8 us, and a site's proxies are few and its visitors come back.
DECISIONS = 4096
# Longer X-Forwarded-For chains are decided every time: a client may write kilobytes there,
# and thousands of those kept would be a memory to fill.
REMEMBERED_CHAIN = 256


def _forwarded(scope: Scope) -> tuple[dict[bytes, str], bytes | None]:
    """The request's X-Forwarded-* headers, each one's values joined, and its Host header as
    sent: one pass."""
    found: dict[bytes, list[str]] = {}
    host = None
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered in FORWARDED:
            found.setdefault(lowered, []).append(value.decode("latin-1"))
        elif lowered == b"host":
            host = value if host is None else b""  # two: neither is kept as sent
    return {name: ",".join(values) for name, values in found.items()}, host


class ProxyHeadersMiddleware:
    def __init__(self, app: Any, trusted: Iterable[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        self._peers: Recent[str, bool] = Recent(DECISIONS)
        self._clients: Recent[tuple[str, str], str] = Recent(DECISIONS)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer, port = scope["client"]
            if self._trusts(peer):
                forwarded, sent_host = _forwarded(scope)
                if forwarded:
                    scope = self._as_forwarded(scope, peer, port, forwarded, sent_host)
        await self.app(scope, receive, send)

    def _as_forwarded(
        self,
        scope: Scope,
        peer: str,
        port: int,
        forwarded: dict[bytes, str],
        sent_host: bytes | None,
    ) -> Scope:
        scope = dict(scope)
        scope["client"] = (self._client(peer, forwarded.get(b"x-forwarded-for", "")), port)
        proto = forwarded.get(b"x-forwarded-proto", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto
        host = forwarded.get(b"x-forwarded-host", "").split(",")[-1].strip().encode("latin-1")
        if host and host != sent_host:
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"] + [
                (b"host", host)
            ]
        return scope

    def _trusts(self, peer: str) -> bool:
        trusted = self._peers.get(peer)
        if trusted is None:
            trusted = self._peers[peer] = is_trusted(peer, self.trusted)
        return trusted

    def _client(self, peer: str, forwarded_for: str) -> str:
        client = self._clients.get((peer, forwarded_for))
        if client is None:
            hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
            client = client_address(peer, hops, self.trusted)
            if len(forwarded_for) <= REMEMBERED_CHAIN:
                self._clients[peer, forwarded_for] = client
        return client
