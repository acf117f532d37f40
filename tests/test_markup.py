"""Every page's tags are well formed, in error states too: a browser reads `a="1"b="2"`
with a parse error and `a="1"required` as other attributes than were meant."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from io import BytesIO

from werkzeug.datastructures import FileStorage

from tests.conftest import HTMX, make_post, make_user
from tests.jobs.conftest import run_app_jobs


class _StartTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(self.get_starttag_text() or "")


def glued_attributes(page: str) -> list[str]:
    """The start tags in which a quoted attribute value runs straight into what follows."""
    parser = _StartTags()
    parser.feed(page)
    glued = []
    for tag in parser.tags:
        quote = None
        for here, character in enumerate(tag):
            if quote is None and character in "\"'":
                quote = character
            elif character == quote:
                quote = None
                if tag[here + 1] not in " \t\n\r\f/>":
                    glued.append(tag)
                    break
    return glued


def test_the_check_finds_glued_attributes():
    assert glued_attributes('<input value="a"required><p class="x">') == [
        '<input value="a"required>'
    ]
    assert glued_attributes("<meta content='{\"a\": 1}'>\n<a href=\"/\" hx-get='/'>") == []


async def _checked(response, status: int) -> str:
    page = await response.get_data(as_text=True)
    assert response.status_code == status, page[:300]
    assert glued_attributes(page) == []
    return page


async def test_pages_fragments_and_forms_with_errors_are_well_formed(make_browser, pools, db):
    anonymous, as_ada, as_bob = make_browser(), make_browser(), make_browser()
    for failed_signup in (
        {"username": "bad name!", "password": "short"},
        {"username": "", "password": ""},
    ):
        page = await _checked(await anonymous.post("/signup", failed_signup), 422)
    assert (
        'required aria-invalid="true" autofocus aria-describedby="password-hint password-error"'
        in page
    )
    await _checked(await anonymous.post("/login", {"username": "x", "password": "y"}), 422)

    ada, bob = await make_user(db, "ada"), await make_user(db, "bob")
    post = await make_post(db, ada, "hello @bob #markup")
    await as_bob.sign_in(bob)
    for action, form in (
        ("/@ada/follow", {}),
        (f"/posts/{post}/like", {}),
        ("/posts", {"body": "hi @ada", "in_reply_to": str(post)}),
    ):
        assert (await as_bob.post(action, form)).status_code == 303
    await run_app_jobs(pools)  # the notifications ada reads below

    pages = ["/", "/public", "/@ada", "/@bob", f"/posts/{post}", "/tags/markup"]
    for path in [*pages, "/login", "/signup", "/@ada/followers", "/@bob/following"]:
        await _checked(await anonymous.get(path), 200)
    await as_ada.sign_in(ada)
    shown = {}
    for path in [*pages, "/notifications", "/settings"]:
        shown[path] = await _checked(await as_ada.get(path), 200)
        await _checked(await as_ada.get(path, headers=HTMX), 200)
    # What the check read: bob's follow, like and reply, a follow button, a post's own forms.
    assert shown["/notifications"].count('<bdi class="name">bob</bdi>') == 3
    assert 'action="/@bob/follow"' in shown["/@bob"]
    assert f'action="/posts/{post}/delete"' in shown["/"]
    for path, form in (
        ("/posts", {"body": ""}),
        ("/settings", {"display_name": "x" * 51, "bio": "\x00"}),
        ("/settings/password", {"current_password": "wrong one!", "new_password": "short"}),
    ):
        await _checked(await as_ada.post(path, form), 422)
        await _checked(await as_ada.post(path, form, headers=HTMX), 422)
    not_a_picture = FileStorage(BytesIO(b"text"), filename="a.png", content_type="image/png")
    await _checked(await as_ada.post("/settings/avatar", files={"avatar": not_a_picture}), 422)


# The bidirectional controls: embeddings, overrides, isolates and marks.
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# In <title>, which takes no markup, user text sits between FSI and PDI with no run of its own.
ISOLATED_IN_TEXT = re.compile("\u2068[^\u202a-\u202e\u2066-\u2069]*\u2069")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class _Isolation(HTMLParser):
    """User text with a bidirectional control, and whether an element around it isolates it.

    An element with a dir attribute, <bdi>, and form fields are isolates: a control inside
    cannot reorder the text around them, nor the text of a link next to it.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool]] = []
        self.seen = 0
        self.exposed: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        isolating = tag in {"bdi", "textarea", "input", "title"} or "dir" in dict(attrs)
        for name, value in attrs:
            if value and BIDI.search(value):
                self.seen += 1
                if not isolating:
                    self.exposed.append(f"<{tag} {name}={value!r}>")
        if tag not in VOID:
            self.open.append((tag, isolating))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not BIDI.search(data):
            return
        self.seen += 1
        inside = [tag for tag, isolating in self.open if isolating]
        if inside == ["title"]:
            data = ISOLATED_IN_TEXT.sub("", data)
        if not inside or (inside == ["title"] and BIDI.search(data)):
            self.exposed.append(f"{data!r} in {[tag for tag, _ in self.open]}")


def exposed_bidi_text(page: str) -> tuple[int, list[str]]:
    parser = _Isolation()
    parser.feed(page)
    return parser.seen, parser.exposed


def test_the_isolation_check_finds_text_that_is_not_isolated():
    assert exposed_bidi_text("<p>a\u202eb</p><title>\u2068x\u202ey\u2069</title>") == (
        2,
        ["'a\\u202eb' in ['p']", "'\\u2068x\\u202ey\\u2069' in ['title']"],
    )
    assert exposed_bidi_text('<p><bdi>\u202e</bdi><span dir="auto">\u202e</span></p>') == (2, [])


async def test_user_text_with_bidi_controls_is_isolated_wherever_a_page_shows_it(
    make_browser, pools, db
):
    """A right-to-left override in a name, a bio or a post must not make a link's text, or
    anything after it, read as something else."""
    as_bidi, as_fan = make_browser(), make_browser()
    bidi, fan = await make_user(db, "bidi"), await make_user(db, "fan")
    fans_post = await make_post(db, fan, "a post of the fan")
    await as_bidi.sign_in(bidi)
    await as_fan.sign_in(fan)
    override = "\u202e"
    profile = {"display_name": f"{override}evil\u2069 name", "bio": f"{override}gpj.exe @fan"}
    assert (await as_bidi.post("/settings", profile)).status_code == 303
    body = f"see https://example.com/{override}txt.exe and \u2067@fan\u2069 #{override}tag"
    assert (await as_bidi.post("/posts", {"body": body})).status_code == 303
    post = await db.fetchval("SELECT max(id) FROM posts")
    reply = {"body": f"{override}re", "in_reply_to": str(fans_post)}
    assert (await as_bidi.post("/posts", reply)).status_code == 303
    await as_bidi.post(f"/posts/{fans_post}/like")
    await as_bidi.post("/@fan/follow")
    await run_app_jobs(pools)

    pages = [
        *((as_bidi, path) for path in ("/", "/public", "/@bidi", f"/posts/{post}", "/settings")),
        *((as_bidi, path) for path in ("/logout", f"/posts/{post}/delete")),
        *((as_fan, path) for path in ("/notifications", f"/posts/{fans_post}", "/@fan/followers")),
    ]
    checked = 0
    for visitor, path in pages:
        for headers in ({}, {"HX-Request": "true"}):
            page = await _checked(await visitor.get(path, headers=headers), 200)
            seen, exposed = exposed_bidi_text(page)
            assert exposed == [], (path, headers)
            checked += seen
    assert checked >= 30  # the check read the user's text on every page
