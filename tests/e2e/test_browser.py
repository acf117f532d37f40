"""Headless Chromium against a real `web` process: htmx swaps with JavaScript, plain forms without.

Debian's Chromium is used as installed; Playwright never downloads a browser here. Every test
fails on any console error or Content Security Policy violation in any of its pages, except
those it says it expects (an error status it provokes, say).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import PASSWORD, ROOT, Launcher, Pyz, Visitor, forms
from tests.e2e.conftest import sign_up as sign_up_without_javascript

pytestmark = [pytest.mark.process, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The README's picture is refreshed only on request, so a test run never edits the repository.
SCREENSHOT = ROOT / "docs" / "screenshot-home.png" if os.environ.get("UPDATE_SCREENSHOT") else None
CSP_VIOLATION = re.compile(
    r"Content Security Policy|Refused to (execute|load|apply|connect)|Applying inline", re.I
)
INSTANCE_NAME = "web-1"
# The module's tests sign up a dozen people and write a few hundred posts from one address.
RATE_LIMITS = "signup_ip=100/30m,post_user=1000/5m,global_ip=100000/5m"


@pytest.fixture(scope="module")
def site(pyz: Pyz, scratch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `web` process for the module, on the embedded database of its own folder."""
    launcher = Launcher(pyz, tmp_path_factory.mktemp("browser-logs"))
    try:
        env = pyz.env(INSTANCE_NAME=INSTANCE_NAME, RATE_LIMITS=RATE_LIMITS)
        yield launcher.web(cwd=scratch / "browser-site", env=env).url
    finally:
        launcher.stop_all()


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright. While it runs, Playwright's event loop is this
    thread's: nothing else may call asyncio.run() until it is closed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


@dataclass
class Console:
    """What the test's pages wrote to the console, and which errors the test expects."""

    lines: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def problems(self) -> list[str]:
        return [
            line
            for line in self.lines
            if (line.startswith(("error", "pageerror")) or CSP_VIOLATION.search(line))
            and not any(pattern.search(line) for pattern in self.expected)
        ]


@pytest.fixture
def console() -> Iterator[Console]:
    """Fails the test when any of its pages logged an error or a CSP violation."""
    seen = Console()
    yield seen
    problems = seen.problems()
    assert not problems, "the console reported:\n" + "\n".join(problems)


@pytest.fixture
def open_page(chromium: Browser, console: Console) -> Iterator[Callable[..., Page]]:
    """Pages in browser contexts of their own (separate cookie jars), closed afterwards."""
    opened: list[BrowserContext] = []

    def open_(context: BrowserContext | None = None, **options) -> Page:
        if context is None:
            context = chromium.new_context(viewport={"width": 960, "height": 900}, **options)
            opened.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", lambda message: console.lines.append(describe(message)))
        page.on("pageerror", lambda error: console.lines.append(f"pageerror: {error}"))
        return page

    yield open_
    for context in opened:
        context.close()


def describe(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def sign_up(page: Page, site: str, username: str, display_name: str | None = None) -> None:
    page.goto(f"{site}/signup")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{site}/")
    expect(page.get_by_role("link", name="Profile")).to_have_attribute("href", f"/@{username}")
    if display_name:
        page.goto(f"{site}/settings")
        page.fill("#display_name", display_name)
        page.get_by_role("button", name="Save profile").click()
        page.wait_for_url(f"{site}/settings?saved=profile")


def post_with_htmx(page: Page, body: str) -> None:
    """Post from the home page and wait for htmx to put the post at the top of the timeline,
    and to settle it: a key pressed on the new post's forms before then submits a plain form."""
    page.fill("#body", body)
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("#timeline article.post").first).to_contain_text(body)
    expect(page.locator("#body")).to_have_value("")  # the form came back empty, out of band
    settled(page)


def like_button(page: Page, text: str):
    return page.locator("article.post", has_text=text).locator("form.like button")


def settled(page: Page) -> None:
    """Wait until htmx has settled what it swapped in: until then the new forms are not yet
    htmx's, and a key pressed on one submits it as a plain form, loading a whole page."""
    expect(
        page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")
    ).to_have_count(0)


def set_marker(page: Page) -> None:
    page.evaluate("window.__marker = 1")


def assert_no_page_load(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "a full page load happened"


def test_htmx_flow_follow_post_like_without_page_loads(site: str, open_page):
    ada, bea = open_page(), open_page()
    sign_up(ada, site, "ada", "Ada Lovelace")
    sign_up(bea, site, "bea", "Bea Hopper")

    bea.goto(f"{site}/")
    set_marker(bea)
    nothing_yet = bea.locator("p.empty")
    expect(nothing_yet).to_contain_text("Nothing here yet.")
    post_with_htmx(bea, "Shipping the #scaling guide today: three instances behind nginx.")
    expect(nothing_yet).to_be_hidden()
    post_with_htmx(bea, "Sessions are signed cookies, so any instance can serve you.")
    assert_no_page_load(bea)

    ada.goto(f"{site}/@bea")
    set_marker(ada)
    ada.get_by_role("button", name="Follow @bea").click()
    unfollow = ada.get_by_role("button", name="Unfollow @bea")
    expect(unfollow).to_have_attribute("aria-pressed", "true")
    expect(ada.locator("#profile-counts")).to_contain_text("1 follower")
    assert_no_page_load(ada)

    ada.goto(f"{site}/")
    expect(ada.locator("#timeline")).to_contain_text("Sessions are signed cookies")
    set_marker(ada)
    post_with_htmx(ada, "Just followed @bea. Reading the guide now!")
    timeline = ada.locator("#timeline article.post")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(1)).to_contain_text("Sessions are signed cookies")
    assert_no_page_load(ada)

    like = like_button(ada, "Sessions are signed cookies")
    for pressed, count in (("true", "1"), ("false", "0"), ("true", "1")):
        like.click()
        expect(like).to_have_attribute("aria-pressed", pressed)
        expect(like.locator(".count")).to_have_text(count)
    assert_no_page_load(ada)

    ada.goto(f"{site}/")
    expect(like_button(ada, "Sessions are signed cookies")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(ada.locator("body")).not_to_contain_text(INSTANCE_NAME)  # only in X-Instance and /up
    picture = ada.screenshot(path=str(SCREENSHOT) if SCREENSHOT else None, full_page=True)
    assert picture.startswith(b"\x89PNG")


def test_the_console_check_sees_errors_and_csp_violations(site: str, open_page, console: Console):
    page = open_page()
    page.goto(f"{site}/public")
    page.evaluate(
        "document.body.append("
        "Object.assign(document.createElement('script'), {textContent: 'window.x = 1'}))"
    )
    page.evaluate("document.body.setAttribute('style', 'color: red')")  # what htmx once did
    page.evaluate("console.error('an error')")
    assert page.evaluate("getComputedStyle(document.body).color") != "rgb(255, 0, 0)"  # refused
    problems = console.problems()
    assert len(problems) == 3, problems
    assert [bool(CSP_VIOLATION.search(line)) for line in problems] == [True, True, False]
    console.expect(".")  # seen: the fixture's own check may pass


def test_same_flow_without_javascript_uses_plain_forms_and_redirects(site: str, open_page):
    cy = open_page(java_script_enabled=False)
    dee = open_page(java_script_enabled=False)
    sign_up(cy, site, "cy")
    sign_up(dee, site, "dee")

    dee.goto(f"{site}/")
    with dee.expect_response(f"{site}/posts") as posted:
        dee.fill("#body", "Posted without any JavaScript.")
        dee.get_by_role("button", name="Post", exact=True).click()
    assert posted.value.status == 303
    dee.wait_for_url(f"{site}/")
    expect(dee.locator("#timeline article.post").first).to_contain_text("without any JavaScript")

    cy.goto(f"{site}/@dee")
    with cy.expect_response(f"{site}/@dee/follow") as followed:
        cy.get_by_role("button", name="Follow @dee").click()
    assert followed.value.status == 303
    cy.wait_for_url(f"{site}/@dee")
    expect(cy.get_by_role("button", name="Unfollow @dee")).to_have_attribute("aria-pressed", "true")
    expect(cy.locator("#profile-counts")).to_contain_text("1 follower")

    cy.goto(f"{site}/")
    cy.fill("#body", "A reply-free post from cy.")
    cy.get_by_role("button", name="Post", exact=True).click()
    cy.wait_for_url(f"{site}/")
    timeline = cy.locator("#timeline article.post")
    expect(timeline.first).to_contain_text("A reply-free post from cy.")
    expect(timeline.nth(1)).to_contain_text("Posted without any JavaScript.")

    like = like_button(cy, "Posted without any JavaScript.")
    for pressed, count, verb in (("true", "1", "like"), ("false", "0", "unlike")):
        with cy.expect_response(re.compile(rf"/posts/\d+/{verb}$")) as toggled:
            like.click()
        assert toggled.value.status == 303
        cy.wait_for_url(f"{site}/")
        expect(like).to_have_attribute("aria-pressed", pressed)
        expect(like.locator(".count")).to_have_text(count)

    # Delete asks on a page of its own, then says it is done.
    own = cy.locator("article.post", has_text="A reply-free post from cy.")
    own.get_by_role("button", name="Delete").click()
    cy.wait_for_url(re.compile(r"/posts/\d+/delete\?$"))
    expect(cy.get_by_role("heading", level=1)).to_have_text("Delete this post?")
    cy.get_by_role("button", name="Delete").click()
    cy.wait_for_url(f"{site}/?deleted=1")
    expect(cy.locator("#messages")).to_have_text("Post deleted.")
    expect(cy.locator("#timeline")).not_to_contain_text("A reply-free post from cy.")


def test_logged_out_in_another_tab_like_and_post_offer_to_log_in_and_keep_the_text(
    site: str, open_page, console: Console
):
    first_tab = open_page()
    sign_up(first_tab, site, "tabby")
    post_with_htmx(first_tab, "A post to like later.")
    second_tab = open_page(first_tab.context)
    second_tab.goto(f"{site}/")
    second_tab.get_by_role("button", name="Log out").click()
    second_tab.wait_for_url(f"{site}/")

    console.expect(r"status of 401|Error Code 401")  # the answer that says the session ended
    messages = first_tab.locator("#messages")
    like_button(first_tab, "A post to like later.").click()
    expect(messages).to_contain_text("Logged out.")
    expect(messages).not_to_contain_text("expired")
    first_tab.fill("#body", "Half a thought, kept.")
    first_tab.locator("#messages").evaluate("element => element.replaceChildren()")
    first_tab.get_by_role("button", name="Post", exact=True).click()
    expect(messages.get_by_role("link", name="Log in again")).to_have_attribute(
        "href", "/login?next=/"
    )
    expect(first_tab.locator("#body")).to_have_value("Half a thought, kept.")


def test_deleting_the_post_of_its_own_page_goes_on_to_its_thread_or_home_and_says_so(
    site: str, open_page
):
    page = open_page()
    sign_up(page, site, "deleter")
    post_with_htmx(page, "A question worth keeping a while.")
    page.locator("article.post", has_text="A question").locator("a.permalink").click()
    page.wait_for_url(re.compile(r"/posts/\d+$"))
    question = page.url
    page.fill("#body", "An answer I will regret.")
    page.get_by_role("button", name="Reply").click()
    expect(page.locator("#replies article.post")).to_contain_text("An answer I will regret.")
    page.locator("#replies a.permalink").click()
    page.wait_for_url(re.compile(r"/posts/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Reply by deleter")

    asked: list[str] = []

    def accept(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.locator("article.post.focus").get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{question}?deleted=1")
    expect(page.locator("#messages")).to_have_text("Post deleted.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Post by deleter")
    expect(page.locator("article.post")).to_have_count(1)  # the regretted answer is gone
    page.locator("article.post.focus").get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{site}/?deleted=1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")
    expect(page.locator("#messages")).to_have_text("Post deleted.")
    expect(page.locator("#timeline")).not_to_contain_text("A question worth keeping")
    assert asked == ["Delete this post?"] * 2


def test_the_counter_shows_what_is_left_after_a_refused_and_after_a_sent_post(
    site: str, open_page, console: Console
):
    page = open_page()
    sign_up(page, site, "counter")
    counter = page.locator("#body-count")
    expect(counter).to_have_text("500 characters left")
    page.fill("#body", "x" * 501)
    expect(counter).to_have_text("1 character too many")
    console.expect(r"status of 422|Error Code 422")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("#body-error")).to_contain_text("this one has 501")
    expect(counter).to_have_text("1 character too many")
    page.fill("#body", "Short again.")
    expect(counter).to_have_text("488 characters left")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("#timeline article.post").first).to_contain_text("Short again.")
    expect(counter).to_have_text("500 characters left")


def test_keyboard_focus_stays_on_like_and_follow_and_goes_to_the_first_invalid_field(
    site: str, open_page, console: Console
):
    page = open_page()
    page.goto(f"{site}/signup")
    page.fill("#username", "not valid!")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#username-error")).to_be_visible()
    expect(page.locator("#username")).to_be_focused()  # the first of the two invalid fields

    sign_up(page, site, "keyboard")
    post_with_htmx(page, "Press me with the keyboard.")
    like = like_button(page, "Press me with the keyboard.")
    for pressed in ("true", "false"):
        like.focus()
        page.keyboard.press("Enter")
        expect(like).to_have_attribute("aria-pressed", pressed)
        expect(like).to_be_focused()  # the new button, which replaced the one pressed
        settled(page)

    console.expect(r"status of 422|Error Code 422")
    page.fill("#body", "x" * 501)
    page.get_by_role("button", name="Post", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#body-error")).to_be_visible()
    expect(page.locator("#body")).to_be_focused()

    with Visitor(httpx.Client(base_url=site, timeout=10.0)) as someone:
        sign_up_without_javascript(someone, "followable")
    page.goto(f"{site}/@followable")
    follow = page.locator("#follow-toggle")
    for name in ("Unfollow @followable", "Follow @followable"):
        follow.focus()
        page.keyboard.press("Enter")
        expect(follow).to_have_accessible_name(name)
        expect(follow).to_be_focused()
        settled(page)


def test_a_resized_compose_box_is_swapped_without_a_csp_violation(site: str, open_page):
    page = open_page()
    sign_up(page, site, "resizer")
    box = page.locator("#body").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] - 3)  # the grip
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] + 80)
    page.mouse.up()
    assert page.locator("#body").get_attribute("style"), "the box was not resized"
    post_with_htmx(page, "Written in a bigger box.")  # swaps the form out of band


def test_back_after_infinite_scroll_returns_to_the_same_place(site: str, open_page):
    with Visitor(httpx.Client(base_url=site, timeout=10.0)) as writer:
        sign_up_without_javascript(writer, "prolific")
        token = forms(writer.page("/"))[-1].fields["csrf_token"]
        for number in range(150):
            body = {"body": f"Scrolled post number {number}.", "csrf_token": token}
            assert writer.http.post("/posts", data=body).status_code == 303
    page = open_page()
    page.goto(f"{site}/public")
    posts = page.locator("#timeline article.post")
    for shown in range(40, 160, 20):
        page.keyboard.press("End")
        expect(posts).to_have_count(shown)
    opened = posts.nth(135)
    opened.scroll_into_view_if_needed()
    post_id = opened.get_attribute("id")
    place = page.evaluate("window.scrollY")
    opened.locator("a.permalink").click()
    page.wait_for_url(re.compile(r"/posts/\d+$"))

    page.go_back()
    expect(page.locator(f"#{post_id}")).to_be_in_viewport()
    assert posts.count() >= 140
    assert abs(page.evaluate("window.scrollY") - place) < 50

    # Back from a fragment (#main) to the rewritten address loads that page whole: not the
    # fragment htmx would get if it asked the server itself.
    page.evaluate("location.hash = 'main'")
    with page.expect_event("load"):
        page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Public timeline")
    assert posts.count() >= 140


# Where the text node holding `text` starts on screen, inside the element given.
TEXT_LEFT = """(element, text) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.data.includes(text)) {
            const range = document.createRange();
            range.selectNodeContents(node);
            return range.getBoundingClientRect().x;
        }
    }
    return null;
}"""


def test_a_bidi_override_in_a_post_reorders_neither_a_link_nor_the_links_around_it(
    site: str, open_page
):
    page = open_page()
    sign_up(page, site, "overrider", display_name="\u202eevil")
    page.goto(f"{site}/")
    post_with_htmx(page, "see https://example.com/\u202etxt.exe #a-b")
    card = page.locator("#timeline article.post").first
    url, tag = card.locator('.body a[dir="ltr"]'), card.locator(".body a.hashtag")
    expect(url).to_have_text("https://example.com/")
    expect(tag).to_have_text("#a-b")
    # As laid out: the link, then the overridden text (reversed within itself), then the tag;
    # not the tag drawn right after the link, to read as one address.
    overridden = card.evaluate(TEXT_LEFT, "txt.exe")
    lefts = [url.bounding_box()["x"], overridden, tag.bounding_box()["x"]]
    assert lefts == sorted(lefts), lefts
    name, handle = card.locator("bdi.name").bounding_box(), card.locator(".handle").bounding_box()
    assert name["x"] + name["width"] <= handle["x"] + 1  # the name stays before the handle


def repost_button(page: Page, text: str):
    return page.locator("article.post", has_text=text).locator("form.repost button")


def test_repost_with_htmx_keeps_the_focus_and_reaches_the_reposters_followers(site: str, open_page):
    author, booster, follower = open_page(), open_page(), open_page()
    sign_up(author, site, "writer")
    sign_up(booster, site, "booster", "Bea Booster")
    sign_up(follower, site, "reader")
    post_with_htmx(author, "A thought worth passing on.")

    booster.goto(f"{site}/public")
    set_marker(booster)
    repost = repost_button(booster, "A thought worth passing on.")
    for pressed, count in (("true", "1"), ("false", "0"), ("true", "1")):
        repost.focus()
        booster.keyboard.press("Enter")
        expect(repost).to_have_attribute("aria-pressed", pressed)
        expect(repost.locator(".count")).to_have_text(count)
        expect(repost).to_be_focused()  # the new button, which replaced the one pressed
        settled(booster)
    assert_no_page_load(booster)

    follower.goto(f"{site}/@booster")
    follower.get_by_role("button", name="Follow @booster").click()
    expect(follower.get_by_role("button", name="Unfollow @booster")).to_be_visible()
    follower.goto(f"{site}/")
    card = follower.locator("#timeline article.post").first
    expect(card).to_contain_text("A thought worth passing on.")
    expect(card.locator(".reposted-by")).to_have_text("↻ Bea Booster reposted")
    expect(repost_button(follower, "A thought worth passing on.")).to_have_accessible_name(
        "Repost (1 repost)"
    )


def test_repost_without_javascript_is_a_plain_form(site: str, open_page):
    author, booster = open_page(), open_page(java_script_enabled=False)
    sign_up(author, site, "plainwriter")
    post_with_htmx(author, "Shared without any JavaScript.")
    sign_up(booster, site, "plainbooster")
    booster.goto(f"{site}/public")
    repost = repost_button(booster, "Shared without any JavaScript.")
    for pressed, count, verb in (("true", "1", "repost"), ("false", "0", "unrepost")):
        with booster.expect_response(re.compile(rf"/posts/\d+/{verb}$")) as toggled:
            repost.click()
        assert toggled.value.status == 303
        booster.wait_for_url(f"{site}/public")
        expect(repost).to_have_attribute("aria-pressed", pressed)
        expect(repost.locator(".count")).to_have_text(count)


def test_block_from_a_profile_asks_then_shows_the_profile_blocked_and_undoes_in_settings(
    site: str, open_page
):
    blocker = open_page()
    with Visitor(httpx.Client(base_url=site, timeout=10.0)) as someone:
        sign_up_without_javascript(someone, "pest")
    sign_up(blocker, site, "blocker")
    blocker.goto(f"{site}/@pest")
    asked: list[str] = []

    def accept(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    blocker.on("dialog", accept)
    blocker.get_by_role("button", name="Block @pest").click()
    expect(blocker.locator("main")).to_contain_text("You have blocked @pest")
    assert [message.split("?")[0] for message in asked] == ["Block @pest"]
    expect(blocker.get_by_role("button", name="Follow @pest")).to_have_count(0)

    blocker.goto(f"{site}/settings/blocks")
    asked.clear()
    unblock = blocker.get_by_role("button", name="Unblock @pest")
    unblock.focus()
    blocker.keyboard.press("Enter")
    block_again = blocker.get_by_role("button", name="Block @pest")
    expect(block_again).to_be_focused()
    settled(blocker)
    assert asked == []  # undoing asks nothing
    blocker.goto(f"{site}/@pest")
    expect(blocker.get_by_role("button", name="Follow @pest")).to_be_visible()
