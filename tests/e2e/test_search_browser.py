"""Search in headless Chromium: the navigation's search box, then the search page's own form,
which with htmx changes only the results and the address."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import (  # noqa: F401 - fixtures of that module, shared here
    assert_no_page_load,
    chromium,
    console,
    open_page,
    post_with_htmx,
    set_marker,
    settled,
    sign_up,
    site,
)

pytestmark = [pytest.mark.process, pytest.mark.browser]


# The fixtures' names are the tests' arguments, as pytest wants them.
def test_typing_in_the_navigations_search_box_finds_posts_and_people(site: str, open_page):  # noqa: F811
    writer = open_page()
    sign_up(writer, site, "marguerite", "Marguerite Perey")
    writer.goto(f"{site}/")
    post_with_htmx(writer, "Francium glows in the #chemistry lab tonight")
    post_with_htmx(writer, "Radium paint on the old watch")

    reader = open_page()
    reader.goto(f"{site}/public")
    box = reader.get_by_role("searchbox", name="Search", exact=True)
    box.fill("francium")
    box.press("Enter")
    reader.wait_for_url(f"{site}/search?q=francium")
    results = reader.locator("#search-results")
    expect(results.locator("article.post")).to_have_count(1)
    expect(results.locator("article.post")).to_contain_text("Francium glows")
    expect(reader.get_by_role("searchbox", name="Search", exact=True)).to_have_value("francium")

    # The page's own form: htmx swaps the results in place and the address follows.
    settled(reader)
    set_marker(reader)
    reader.fill("#search-q", "margu")
    reader.get_by_role("button", name="Search", exact=True).click()
    expect(results.locator(".person")).to_contain_text("@marguerite")
    expect(reader).to_have_url(f"{site}/search?q=margu")
    reader.fill("#search-q", "from:marguerite radium")
    reader.get_by_role("button", name="Search", exact=True).click()
    expect(results.locator("article.post")).to_contain_text("Radium paint")
    expect(results.locator("article.post")).to_have_count(1)
    assert_no_page_load(reader)


def test_a_search_too_long_says_so_on_the_page(site: str, open_page, console):  # noqa: F811
    console.expect("422")
    page = open_page()
    page.goto(f"{site}/search?q=" + "a" * 1001)
    expect(page.get_by_role("alert")).to_contain_text("at most 1000 characters")
