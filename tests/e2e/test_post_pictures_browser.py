"""A picture posted from Chromium with its alt text: the post shows a placeholder, and then,
once the job of a `combined` process has prepared the picture, the picture itself, without a
reload (htmx asks for it again)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import Launcher, Pyz
from tests.e2e.test_browser import (  # noqa: F401 (fixtures)
    RATE_LIMITS,
    chromium,
    console,
    open_page,
    sign_up,
)

pytestmark = [pytest.mark.process, pytest.mark.browser]


@pytest.fixture(scope="module")
def site(pyz: Pyz, scratch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `combined` process (web and jobs) on the embedded database of its own folder."""
    launcher = Launcher(pyz, tmp_path_factory.mktemp("pictures-logs"))
    try:
        env = pyz.env(RATE_LIMITS=RATE_LIMITS)
        yield launcher.web(cwd=scratch / "pictures-site", env=env, mode="combined").url
    finally:
        launcher.stop_all()


def test_a_posted_picture_appears_with_its_alt_text_once_its_job_has_run(
    site: str,
    open_page,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
):
    lawn = tmp_path / "lawn.png"
    Image.new("RGB", (300, 200), (0, 160, 0)).save(lawn)
    page = open_page()
    sign_up(page, site, "photographer")
    page.fill("#body", "My garden")
    page.locator("summary", has_text="Add pictures").click()
    page.set_input_files("#picture_1", str(lawn))
    page.fill("#alt_1", "A green lawn")
    page.get_by_role("button", name="Post", exact=True).click()

    post = page.locator("#timeline article.post").first
    expect(post).to_contain_text("My garden")
    picture = post.locator("img[alt='A green lawn']")
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("src", re.compile(r"^/pictures/\d+/thumb$"))
    assert picture.evaluate("img => img.complete && img.naturalWidth") == 300
    expect(post.locator(".picture.pending")).to_have_count(0)
    expect(page.locator("#body")).to_have_value("")  # the form came back empty

    # And for a reader who comes later, without JavaScript's help: the picture at once.
    reader = open_page(java_script_enabled=False)
    reader.goto(f"{site}/public")
    expect(reader.locator("article.post img[alt='A green lawn']")).to_be_visible()
