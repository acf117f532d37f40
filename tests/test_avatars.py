"""Profile pictures: uploaded from settings, checked by their bytes, served by any instance."""

from __future__ import annotations

import base64
import re
from io import BytesIO

import pytest
from werkzeug.datastructures import FileStorage

from microblog.avatars.images import MAX_BYTES
from tests.conftest import make_post, make_user

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _upload(data: bytes, name: str = "me.png", content_type: str = "image/png") -> dict:
    return {"avatar": FileStorage(BytesIO(data), filename=name, content_type=content_type)}


async def test_an_uploaded_picture_shows_on_posts_and_is_served_for_good(browser, db):
    user = await make_user(db, "pictured")
    await make_post(db, user, "look at me")
    await browser.login("pictured")
    response = await browser.post("/settings/avatar", files=_upload(PNG))
    assert response.status_code == 303
    digest = await db.fetchval("SELECT avatar_digest FROM users WHERE id = $1", user.id)
    assert digest
    timeline = await browser.text("/public")
    assert f'src="/@pictured/avatar?v={digest}"' in timeline
    served = await browser.get(f"/@pictured/avatar?v={digest}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert await served.get_data() == PNG
    unversioned = await browser.get("/@pictured/avatar")
    assert unversioned.headers["Cache-Control"] == "no-cache"
    again = await browser.get("/@pictured/avatar", headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("data", "name", "content_type", "message"),
    [
        (b"", "empty.png", "image/png", "Choose a picture to upload."),
        (b"just some text", "fake.png", "image/png", "Use a PNG, JPEG, GIF or WebP picture."),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.svg",
            "image/svg+xml",
            "Use a PNG, JPEG, GIF or WebP picture.",
        ),
        (PNG + b"\0" * MAX_BYTES, "big.png", "image/png", "Pictures can be at most 512 kB"),
    ],
)
async def test_what_is_not_a_picture_we_serve_is_refused(
    browser, db, data, name, content_type, message
):
    await make_user(db, "careful")
    await browser.login("careful")
    response = await browser.post("/settings/avatar", files=_upload(data, name, content_type))
    assert response.status_code == 422
    page = await response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert await db.fetchval("SELECT count(*) FROM avatars") == 0


async def test_a_picture_can_be_removed(browser, db):
    await make_user(db, "shy")
    await browser.login("shy")
    await browser.post("/settings/avatar", files=_upload(PNG))
    assert (await browser.get("/@shy/avatar")).status_code == 200
    response = await browser.post("/settings/avatar/delete")
    assert response.status_code == 303
    assert (await browser.get("/@shy/avatar")).status_code == 404
    assert re.search(
        r'<span class="avatar large" aria-hidden="true">S</span>', await browser.text("/@shy")
    )
