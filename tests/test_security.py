"""Security headers, script-free markup, hashed static files and trusted proxies."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from html.parser import HTMLParser

import jinja2
import pytest

from microblog.app import create_app
from microblog.web.assets import STATIC_DIR, StaticFiles, UnknownStaticFile
from microblog.web.proxies import ProxyHeadersMiddleware, client_address
from tests.conftest import make_post, make_user

TRUSTED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


async def test_pages_carry_the_security_headers(browser):
    response = await browser.get("/")
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


async def test_pages_are_never_kept_by_shared_caches(browser, db):
    await browser.sign_in(await make_user(db, "private"))
    for path in ("/", "/settings", "/@private", "/no/such/page"):
        response = await browser.get(path)
        assert response.headers["Cache-Control"] == "private, no-cache", path
    static = await browser.get("/static/app.css")
    assert static.headers["Cache-Control"] == "no-cache"  # its own, kept
    assert (await browser.get("/notifications")).headers["Cache-Control"] == "no-store"


async def test_error_pages_carry_the_security_headers_too(browser):
    response = await browser.get("/no/such/page")
    assert response.status_code == 404
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


HSTS = "Strict-Transport-Security"
OVER_HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture
async def in_production(settings, pools):
    app = create_app(
        dataclasses.replace(settings, env="production"), pools, instance_name="test-instance"
    )
    async with app.test_app():
        yield app.test_client()


def _from(peer: str) -> dict:
    """The TCP peer of a test request (the test client names none by itself)."""
    return {"scope_base": {"client": (peer, 50000)}}


async def test_in_production_https_responses_say_to_use_https_only(in_production):
    for path in ("/", "/login", "/no/such/page", "/up"):
        response = await in_production.get(path, headers=OVER_HTTPS, **_from("127.0.0.1"))
        assert response.headers.get(HSTS) == "max-age=31536000", path
        assert len(response.headers.get_all(HSTS)) == 1


async def test_no_strict_transport_security_over_http_or_on_an_untrusted_word(in_production):
    plain = await in_production.get("/", **_from("127.0.0.1"))
    assert HSTS not in plain.headers
    spoofed = await in_production.get("/", headers=OVER_HTTPS, **_from("203.0.113.9"))
    assert HSTS not in spoofed.headers, "only a trusted proxy says how the request came"


async def test_no_strict_transport_security_in_development_even_over_https(client):
    response = await client.get("/", headers=OVER_HTTPS, **_from("127.0.0.1"))
    assert response.status_code == 200
    assert HSTS not in response.headers


class _ScriptAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value}>")
        if tag == "script":
            if not dict(attrs).get("src"):
                self.problems.append("inline <script>")
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("script body")


async def test_no_page_has_inline_script_or_event_handlers(browser, db):
    author = await make_user(db, "author")
    post_id = await make_post(db, author, "hello #world @author https://example.com")
    await make_post(db, author, "a reply", in_reply_to=post_id)
    await browser.login("author")
    pages = [
        "/", "/public", "/@author", "/@author/followers", "/@author/following",
        f"/posts/{post_id}", "/tags/world", "/settings", "/missing-page",
    ]  # fmt: skip
    for page in pages:
        audit = _ScriptAudit()
        audit.feed(await (await browser.get(page)).get_data(as_text=True))
        assert audit.problems == [], page
    await browser.post("/logout")
    for page in ("/", "/login", "/signup"):
        audit = _ScriptAudit()
        audit.feed(await (await browser.get(page)).get_data(as_text=True))
        assert audit.problems == [], page


async def test_the_instance_name_is_told_to_operators_and_never_shown_in_pages(browser, db):
    """Internal host names (vm:3000) help whoever runs the site, and an attacker."""
    name = "test-instance"
    up = await browser.get("/up")
    assert name in await up.get_data(as_text=True)
    author = await make_user(db, "author")
    post_id = await make_post(db, author, "hello")
    await browser.sign_in(author)
    htmx = {"HX-Request": "true"}
    requests = [
        *((path, {}) for path in ("/", "/public", f"/posts/{post_id}", "/settings", "/@author")),
        *((path, {}) for path in ("/notifications", "/no/such/page", "/posts/424242")),
        ("/no/such/page", htmx),
        ("/public?before=x", htmx),
    ]
    for path, headers in requests:
        response = await browser.get(path, headers=headers)
        assert response.headers["X-Instance"] == name, path
        assert name not in await response.get_data(as_text=True), path
    # What nginx shows when no instance answers names none either.
    for page in (STATIC_DIR / "errors").glob("*.html"):
        text = page.read_text()
        assert "served by" not in text
        assert "$" not in text, page  # no nginx variable such as $hostname or $upstream_addr


async def _static_urls(browser) -> list[str]:
    page = await browser.text("/")
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', page)


async def test_static_urls_carry_a_content_hash_and_are_immutable(browser):
    urls = await _static_urls(browser)
    assert len(urls) >= 3
    for url in urls:
        assert re.search(r"\.[0-9a-f]{12}\.[a-z]+$", url), url
        response = await browser.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_template_naming_a_static_file_there_is_not_fails_loudly():
    # Jinja renders a failed lookup as an empty string: the page would load without its
    # stylesheet and no test of the markup would notice.
    templates = jinja2.Environment(autoescape=True)
    templates.globals["static"] = StaticFiles(STATIC_DIR).urls
    assert templates.from_string("{{ static['app.css'] }}").render().startswith("/static/app.")
    with pytest.raises(UnknownStaticFile, match=r"apps\.css"):
        templates.from_string("{{ static['apps.css'] }}").render()


async def test_a_stale_hash_still_serves_the_file_but_never_as_immutable(browser):
    url = next(u for u in await _static_urls(browser) if u.endswith(".css"))
    stale = re.sub(r"\.[0-9a-f]{12}\.css$", ".000000000000.css", url)
    response = await browser.get(stale)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert "text/css" in response.headers["Content-Type"]


@pytest.mark.parametrize(
    "path", ["/static/missing.css", "/static/../microblog/config.py", "/static/%2e%2e/README.md"]
)
async def test_unknown_or_escaping_static_paths_are_404(browser, path):
    assert (await browser.get(path)).status_code == 404


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),  # untrusted peer: header ignored
        ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),  # trusted proxy
        ("127.0.0.1", ["6.6.6.6", "198.51.100.7"], "198.51.100.7"),  # spoofed left hop ignored
        ("127.0.0.1", ["198.51.100.7", "10.1.2.3"], "198.51.100.7"),  # chain of trusted proxies
        ("127.0.0.1", ["garbage", "198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["not-an-ip"], "127.0.0.1"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    ],
)
def test_client_address_trusts_only_trusted_proxies(peer, forwarded, expected):
    assert client_address(peer, forwarded, TRUSTED) == expected


async def _seen_by_app(peer: str, headers: list[tuple[bytes, bytes]]) -> dict:
    seen: dict = {}

    async def app(scope, receive, send):
        seen.update(scope)

    middleware = ProxyHeadersMiddleware(app, TRUSTED)
    scope = {"type": "http", "client": (peer, 5555), "scheme": "http", "headers": headers}
    await middleware(scope, None, None)
    return seen


async def test_one_middleware_decides_each_peer_alike_every_time():
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["client"][0], scope.get("scheme")))

    middleware = ProxyHeadersMiddleware(app, TRUSTED)
    # Two X-Forwarded-For headers count as one list; X-Forwarded-Proto's last value wins.
    headers = [
        (b"X-Forwarded-For", b"198.51.100.7"),
        (b"x-forwarded-for", b"10.1.2.3"),
        (b"x-forwarded-proto", b"http, https"),
    ]
    for peer in ("127.0.0.1", "203.0.113.9", "127.0.0.1", "203.0.113.9", "10.0.0.5"):
        scope = {"type": "http", "client": (peer, 1), "scheme": "http", "headers": headers}
        await middleware(scope, None, None)
    trusted, untrusted = ("198.51.100.7", "https"), ("203.0.113.9", "http")
    assert seen == [trusted, untrusted, trusted, untrusted, trusted]
    # A long chain is decided every time, never kept: a client could fill memory with them.
    remembered = len(middleware._clients)
    long_chain = [(b"x-forwarded-for", b"10.0.0.9, " * 100 + b"192.0.2.45")]
    await middleware(
        {"type": "http", "client": ("127.0.0.1", 1), "headers": long_chain}, None, None
    )
    assert seen[-1][0] == "192.0.2.45"
    assert len(middleware._clients) == remembered
    other_client = [(b"x-forwarded-for", b"192.0.2.44")]
    await middleware(
        {"type": "http", "client": ("127.0.0.1", 1), "headers": other_client}, None, None
    )
    assert seen[-1][0] == "192.0.2.44"


async def test_a_forwarded_host_replaces_every_host_header_sent():
    headers = [(b"host", b"evil.example"), (b"host", b"microblog.example")]
    seen = await _seen_by_app("127.0.0.1", [*headers, (b"x-forwarded-host", b"microblog.example")])
    assert [v for k, v in seen["headers"] if k == b"host"] == [b"microblog.example"]
    as_sent = await _seen_by_app(
        "127.0.0.1", [headers[1], (b"x-forwarded-host", b"microblog.example")]
    )
    assert [v for k, v in as_sent["headers"] if k == b"host"] == [b"microblog.example"]


async def test_forwarded_scheme_and_host_are_believed_only_from_a_trusted_peer():
    headers = [
        (b"host", b"internal:3001"),
        (b"x-forwarded-for", b"198.51.100.7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"microblog.example"),
    ]
    trusted = await _seen_by_app("127.0.0.1", headers)
    assert trusted["client"] == ("198.51.100.7", 5555)
    assert trusted["scheme"] == "https"
    assert (b"host", b"microblog.example") in trusted["headers"]
    untrusted = await _seen_by_app("203.0.113.9", headers)
    assert untrusted["client"] == ("203.0.113.9", 5555)
    assert untrusted["scheme"] == "http"
    assert (b"host", b"internal:3001") in untrusted["headers"]
