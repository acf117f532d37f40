"""The anonymous public page, rendered once for everyone: every write it shows reaches it at
once, on the next request, and the operator's guide lists exactly those writes."""

from __future__ import annotations

import re

import pytest

from microblog.timelines import public_cache
from tests.conftest import ROOT, make_post, make_user
from tests.test_avatars import PNG, _upload

pytestmark = pytest.mark.both_layouts


async def test_every_write_the_anonymous_page_shows_reaches_it_at_once(make_browser, db):
    author = await make_user(db, "author")
    first = await make_post(db, author, "the first post")
    anonymous, writer = make_browser(), make_browser()
    await writer.sign_in(author)
    assert "the first post" in await anonymous.text("/public")  # cached from now on

    async def shown() -> str:
        return await anonymous.text("/public")

    assert (await writer.post("/posts", {"body": "a second post"})).status_code == 303
    assert "a second post" in await shown()
    assert (await writer.post(f"/posts/{first}/like")).status_code == 303
    assert 'aria-label="1 like"' in await shown()
    assert (await writer.post(f"/posts/{first}/unlike")).status_code == 303
    assert 'aria-label="0 likes"' in await shown()
    assert (await writer.post(f"/posts/{first}/repost")).status_code == 303
    assert 'aria-label="1 repost"' in await shown()
    assert (await writer.post(f"/posts/{first}/unrepost")).status_code == 303
    assert 'aria-label="0 reposts"' in await shown()
    response = await writer.post("/settings", {"display_name": "Renamed Author", "bio": ""})
    assert response.status_code == 303
    assert "Renamed Author" in await shown()
    assert (await writer.post("/settings/avatar", files=_upload(PNG))).status_code == 303
    assert 'src="/@author/avatar?v=' in await shown()
    assert (await writer.post("/settings/avatar/delete")).status_code == 303
    assert 'src="/@author/avatar?v=' not in await shown()
    assert (await writer.post(f"/posts/{first}/delete")).status_code == 303
    assert "the first post" not in await shown()


def test_the_guide_lists_exactly_the_writes_that_refresh_the_page():
    guide = (ROOT / "docs" / "cache.md").read_text(encoding="utf-8")
    section = guide.split("### How a write reaches every instance", 1)[1].split("\n### ", 1)[0]
    listed = re.findall(r"^- (.+?)[,.]?$", section, flags=re.MULTILINE)
    assert listed == [change.description for change in public_cache.SHOWS]
