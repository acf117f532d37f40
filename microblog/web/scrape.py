"""GET /metrics: the process's metrics for Prometheus, answered before the app sees the request.

Only for scrapers: peers in TRUSTED_PROXIES, loopback, or whoever sends METRICS_TOKEN as a
bearer token (compared in constant time). Anyone else's request goes on to the app, which
answers it as any address it does not know: 404, the same page, so /metrics is not revealed.
Answered here, a scrape costs no session, user lookup or rate-limit round trip, and is not
counted among the requests it reports; every other request is counted in flight here, around
the whole app. The worker serves it alone, on a port of its own
(`worker --metrics-port`), with `nothing_else` behind it.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from microblog.metrics.process import CONTENT_TYPE, ProcessMetrics
from microblog.parsers import IPNetwork
from microblog.web.proxies import is_trusted

PATH = "/metrics"
ASGIApp = Any


class MetricsEndpoint:
    def __init__(
        self,
        app: ASGIApp,
        metrics: ProcessMetrics,
        *,
        trusted: tuple[IPNetwork, ...],
        token: str | None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted = trusted
        self.token = token.encode() if token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == PATH and scope["method"] in ("GET", "HEAD") and self.allowed(scope):
            body = await self.metrics.exposition()
            headers = [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
            )
            return
        # Counted out in `finally`, so a request whose client went away is not left in flight.
        self.metrics.http.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.http.in_flight -= 1

    def allowed(self, scope: dict) -> bool:
        client = (scope.get("client") or ("", 0))[0]
        if is_trusted(client, self.trusted) or _loopback(client):
            return True
        return self.token is not None and any(
            name == b"authorization" and _bearer_matches(value, self.token)
            for name, value in scope["headers"]
        )


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _bearer_matches(header: bytes, token: bytes) -> bool:
    scheme, _, sent = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(sent.strip(), token)


async def nothing_else(scope: dict, receive: Any, send: Any) -> None:
    """What stands behind the worker's metrics: 404 for every other request, and the
    lifespan messages hypercorn sends any app."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        body = b"Not found: this is a worker, which serves only /metrics.\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})
