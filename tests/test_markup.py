"""Every page's tags are well formed, in error states too: a browser reads `a="1"b="2"`
with a parse error and `a="1"required` as other attributes than were meant."""

from __future__ import annotations

from html.parser import HTMLParser
from io import BytesIO

from werkzeug.datastructures import FileStorage

from tests.conftest import make_post, make_user
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
    assert 'required aria-invalid="true" aria-describedby="password-hint password-error"' in page
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
    await run_app_jobs(pools, db)  # the notifications ada reads below

    pages = ["/", "/public", "/@ada", "/@bob", f"/posts/{post}", "/tags/markup"]
    for path in [*pages, "/login", "/signup", "/@ada/followers", "/@bob/following"]:
        await _checked(await anonymous.get(path), 200)
    await as_ada.sign_in(ada)
    shown = {}
    for path in [*pages, "/notifications", "/settings"]:
        shown[path] = await _checked(await as_ada.get(path), 200)
        await _checked(await as_ada.get(path, headers={"HX-Request": "true"}), 200)
    # What the check read: bob's follow, like and reply, a follow button, a post's own forms.
    assert shown["/notifications"].count('<span class="name">bob</span>') == 3
    assert 'action="/@bob/follow"' in shown["/@bob"]
    assert f'action="/posts/{post}/delete"' in shown["/"]
    for path, form in (
        ("/posts", {"body": ""}),
        ("/settings", {"display_name": "x" * 51, "bio": "\x00"}),
        ("/settings/password", {"current_password": "wrong one!", "new_password": "short"}),
    ):
        await _checked(await as_ada.post(path, form), 422)
        await _checked(await as_ada.post(path, form, headers={"HX-Request": "true"}), 422)
    not_a_picture = FileStorage(BytesIO(b"text"), filename="a.png", content_type="image/png")
    await _checked(await as_ada.post("/settings/avatar", files={"avatar": not_a_picture}), 422)
