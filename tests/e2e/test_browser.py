"""Headless Chromium against a real `web` process: htmx swaps with JavaScript, plain forms without.

Debian's Chromium is used as installed; Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import PASSWORD, ROOT, Launcher, Pyz

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
CSP_VIOLATION = re.compile(r"Content Security Policy|Refused to (execute|load|apply|connect)", re.I)


@pytest.fixture(scope="module")
def site(pyz: Pyz, scratch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `web` process for the module, on the embedded database of its own folder."""
    launcher = Launcher(pyz, tmp_path_factory.mktemp("browser-logs"))
    try:
        env = pyz.env(INSTANCE_NAME="web-1")  # the name in the footer of the screenshot
        yield launcher.web(cwd=scratch / "browser-site", env=env).url
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def contexts(chromium: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts made by the test (separate cookie jars), closed afterwards."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def open_page(
    chromium: Browser, contexts: list[BrowserContext], console: list[str] | None = None, **options
) -> Page:
    context = chromium.new_context(viewport={"width": 960, "height": 900}, **options)
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    if console is not None:
        page.on("console", lambda message: console.append(describe(message)))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    return page


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
    """Post from the home page and wait for htmx to put the post at the top of the timeline."""
    page.fill("#body", body)
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("#timeline article.post").first).to_contain_text(body)
    expect(page.locator("#body")).to_have_value("")  # the form came back empty, out of band


def like_button(page: Page, text: str):
    return page.locator("article.post", has_text=text).locator("form.like button")


def set_marker(page: Page) -> None:
    page.evaluate("window.__marker = 1")


def assert_no_page_load(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "a full page load happened"


def test_htmx_flow_follow_post_like_without_page_loads(
    site: str, chromium: Browser, contexts: list[BrowserContext]
):
    console: list[str] = []
    ada = open_page(chromium, contexts, console)
    bea = open_page(chromium, contexts, console)
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

    violations = [line for line in console if CSP_VIOLATION.search(line)]
    assert not violations, violations
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console

    # The console listener does see CSP violations: an inline script is refused and reported.
    with ada.expect_console_message(lambda message: bool(CSP_VIOLATION.search(message.text))):
        ada.evaluate(
            "document.body.append("
            "Object.assign(document.createElement('script'), {textContent: 'window.x = 1'}))"
        )

    ada.goto(f"{site}/")
    expect(like_button(ada, "Sessions are signed cookies")).to_have_attribute(
        "aria-pressed", "true"
    )
    picture = ada.screenshot(path=str(SCREENSHOT) if SCREENSHOT else None, full_page=True)
    assert picture.startswith(b"\x89PNG")


def test_same_flow_without_javascript_uses_plain_forms_and_redirects(
    site: str, chromium: Browser, contexts: list[BrowserContext]
):
    cy = open_page(chromium, contexts, java_script_enabled=False)
    dee = open_page(chromium, contexts, java_script_enabled=False)
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
