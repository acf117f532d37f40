"""Security headers on every response. No inline script anywhere, so the CSP can forbid it.

Pages carry a CSRF token and, for a logged-in visitor, what only they may see: unless a route
says otherwise (static files, pictures), no cache but the browser's may keep a response, and
the browser asks again before using it.

In production, a response to a request that came over https (directly, or as a trusted proxy
said in X-Forwarded-Proto) tells the browser to use nothing but https for this host for a
year. Never in development: it would pin http://127.0.0.1 to https in the developer's browser.
"""

from __future__ import annotations

from quart import Response, request

from microblog.web.state import state

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "private, no-cache",
}
# No includeSubDomains: other hosts under the same domain may not serve https at all.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


async def add_security_headers(response: Response) -> Response:
    # One pass over the headers already set, rather than a lookup per name: werkzeug answers
    # a lookup of a missing header by raising an exception, five times on every response.
    present = {name.lower() for name in response.headers.keys()}  # noqa: SIM118 - Headers
    for name, value in HEADERS.items():
        if name.lower() not in present:
            response.headers.add(name, value)
    if request.scheme == "https" and state().settings.is_production:
        response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    return response
