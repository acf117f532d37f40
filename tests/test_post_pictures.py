"""Pictures on posts: sent with the post, each with its alt text, prepared by a job (a
placeholder shows until then), served by any instance for good, and refused whole, with the
form and a message, when anything about them is wrong."""

from __future__ import annotations

import os
import re
from io import BytesIO

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from microblog.app import LARGER_REQUESTS
from microblog.pictures import MAX_BYTES
from microblog.post_pictures.forms import MAX_ALT
from microblog.web.assets import IMMUTABLE
from tests.conftest import make_user
from tests.jobs.conftest import run_app_jobs

GREEN = (0, 160, 0)


def _encoded(picture: Image.Image, format: str = "PNG", **options) -> bytes:
    out = BytesIO()
    picture.save(out, format, **options)
    return out.getvalue()


def _file(data: bytes, name: str = "picture.png") -> FileStorage:
    return FileStorage(BytesIO(data), filename=name, content_type="application/octet-stream")


def _png(size: tuple[int, int] = (300, 200), colour=GREEN) -> bytes:
    return _encoded(Image.new("RGB", size, colour))


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    return _encoded(Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)))


def _jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Industries"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x8825] = {2: (48.0, 51.0, 24.0), 4: (2.0, 21.0, 7.0)}  # GPS latitude, longitude
    return _encoded(Image.new("RGB", (320, 240), GREEN), "JPEG", exif=exif)


async def _post(browser, body: str = "", headers: dict | None = None, **fields) -> object:
    files = {name: value for name, value in fields.items() if isinstance(value, FileStorage)}
    form = {name: value for name, value in fields.items() if name not in files}
    return await browser.post("/posts", {"body": body, **form}, files=files, headers=headers)


async def _counts(db) -> tuple[int, int, int]:
    return (
        await db.fetchval("SELECT count(*) FROM posts"),
        await db.fetchval("SELECT count(*) FROM post_pictures"),
        await db.fetchval("SELECT count(*) FROM infra.jobs"),
    )


def _picture_ids(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="picture-(\d+)"', page)]


async def test_a_picture_shows_a_placeholder_until_its_job_has_run_then_itself(browser, db, pools):
    await make_user(db, "painter")
    await browser.login("painter")
    response = await _post(browser, "my garden", picture_1=_file(_png()), alt_1="A green lawn")
    assert response.status_code == 303
    page = await browser.text("/")
    [picture_id] = _picture_ids(page)
    assert "Preparing the picture" in page
    assert f'hx-get="/pictures/{picture_id}/slot"' in page
    assert (await browser.get(f"/pictures/{picture_id}")).status_code == 404

    await run_app_jobs(pools)

    page = await browser.text("/")
    assert "Preparing the picture" not in page
    assert f'<img src="/pictures/{picture_id}/thumb" alt="A green lawn"' in page
    assert f'href="/pictures/{picture_id}"' in page
    slot = await browser.text(f"/pictures/{picture_id}/slot")
    assert f'src="/pictures/{picture_id}/thumb"' in slot
    for path in (f"/pictures/{picture_id}", f"/pictures/{picture_id}/thumb"):
        served = await browser.get(path)
        assert served.status_code == 200
        assert served.headers["Content-Type"] == "image/webp"
        assert served.headers["Cache-Control"] == IMMUTABLE
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        picture = Image.open(BytesIO(await served.get_data()))
        assert picture.format == "WEBP"
        assert picture.size == (300, 200)  # smaller than either size: never scaled up


async def test_a_jpeg_with_exif_is_served_without_it(browser, db, pools):
    upload = _jpeg_with_exif()
    assert Image.open(BytesIO(upload)).getexif()[0x010F] == "SpyCam Industries"
    await make_user(db, "tourist")
    await browser.login("tourist")
    response = await _post(browser, "", picture_1=_file(upload, "a.jpg"), alt_1="A field")
    assert response.status_code == 303
    await run_app_jobs(pools)
    picture_id = await db.fetchval("SELECT id FROM post_pictures")
    for path in (f"/pictures/{picture_id}", f"/pictures/{picture_id}/thumb"):
        data = await (await browser.get(path)).get_data()
        assert b"SpyCam" not in data
        assert b"Exif" not in data
        served = Image.open(BytesIO(data))
        assert not served.getexif()
        assert "exif" not in served.info
    # The upload itself is forgotten once its job is done.
    assert await db.fetchval("SELECT original FROM post_pictures") is None


async def test_a_large_picture_is_scaled_to_fit_and_its_thumbnail_smaller(browser, db, pools):
    await make_user(db, "panorama")
    await browser.login("panorama")
    picture = _file(_encoded(Image.new("RGB", (3200, 800), GREEN)))
    assert (await _post(browser, "wide", picture_1=picture, alt_1="Hills")).status_code == 303
    await run_app_jobs(pools)
    picture_id = await db.fetchval("SELECT id FROM post_pictures")
    full = Image.open(BytesIO(await (await browser.get(f"/pictures/{picture_id}")).get_data()))
    thumb = await (await browser.get(f"/pictures/{picture_id}/thumb")).get_data()
    assert full.size == (1600, 400)
    assert Image.open(BytesIO(thumb)).size == (640, 160)
    assert 'width="640" height="160"' in await browser.text("/")


async def test_a_post_of_pictures_alone_needs_no_text_but_one_without_them_does(browser, db, pools):
    await make_user(db, "quiet")
    await browser.login("quiet")
    response = await _post(browser, "   ", picture_1=_file(_png()), alt_1="Nothing to add")
    assert response.status_code == 303
    refused = await _post(browser, "   ")
    assert refused.status_code == 422
    assert "Write something first." in await refused.get_data(as_text=True)
    assert await db.fetchval("SELECT count(*) FROM posts") == 1
    await run_app_jobs(pools)
    page = await browser.text("/")
    assert 'alt="Nothing to add"' in page


async def test_four_pictures_at_their_largest_make_one_post(browser, db, pools):
    await make_user(db, "album")
    await browser.login("album")
    pictures = [_noise_png(400) for _ in range(4)]
    assert all(MAX_BYTES * 0.9 < len(data) <= MAX_BYTES for data in pictures)
    fields = {f"picture_{n}": _file(data) for n, data in enumerate(pictures, 1)}
    fields |= {f"alt_{n}": f"Noise number {n}" for n in range(1, 5)}
    response = await _post(browser, "four", **fields)
    assert response.status_code == 303, await response.get_data(as_text=True)
    await run_app_jobs(pools)
    rows = await db.fetch("SELECT position, alt, state FROM post_pictures ORDER BY position")
    assert [tuple(row) for row in rows] == [(n, f"Noise number {n}", "ready") for n in range(1, 5)]
    assert await db.fetchval("SELECT picture_count FROM posts") == 4
    page = await browser.text("/")
    assert page.count('class="picture"') == 4


TEXT = b"just some words, not a picture"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        pytest.param(
            {"picture_1": lambda: _file(TEXT, "notes.txt"), "alt_1": "Notes"},
            422,
            "Picture 1: Use a PNG, JPEG, GIF or WebP picture.",
            id="not-a-picture",
        ),
        pytest.param(
            {
                **{f"picture_{n}": lambda: _file(_png()) for n in range(1, 6)},
                **{f"alt_{n}": "Green" for n in range(1, 6)},
            },
            422,
            "A post can have at most 4 pictures.",
            id="a-fifth-picture",
        ),
        pytest.param(
            {"picture_1": lambda: _file(_png()), "picture_2": lambda: _file(_png()),
             "alt_1": "Green"},
            422,
            "Describe picture 2 for those who cannot see it: its alt text is required.",
            id="missing-alt-text",
        ),
        pytest.param(
            {"picture_1": lambda: _file(_noise_png(440)), "alt_1": "Noise"},
            413,
            "Picture 1: Pictures can be at most 512 kB; this one is",
            id="oversized",
        ),
        pytest.param(
            {"picture_1": lambda: _file(_png()), "alt_1": "a" * (MAX_ALT + 1)},
            422,
            f"Alt text is at most {MAX_ALT} characters; that of picture 1 has {MAX_ALT + 1}.",
            id="alt-text-too-long",
        ),
        pytest.param(
            {"picture_1": lambda: _file(_encoded(Image.new("1", (5000, 5000)))), "alt_1": "Big"},
            413,
            "Picture 1: Pictures can have at most 16.8 megapixels",
            id="too-many-pixels",
        ),
    ],
)  # fmt: skip
async def test_bad_pictures_are_refused_with_the_form_and_a_message_and_nothing_written(
    browser, db, fields, status, message
):
    await make_user(db, "careless")
    await browser.login("careless")
    before = await _counts(db)
    sent = {name: value() if callable(value) else value for name, value in fields.items()}
    for htmx in (False, True):
        again = {n: _file(v.stream.getvalue(), v.filename) if isinstance(v, FileStorage) else v
                 for n, v in sent.items()}  # fmt: skip
        headers = {"HX-Request": "true"} if htmx else {}
        response = await _post(browser, "with pictures", headers=headers, **again)
        assert response.status_code == status
        page = await response.get_data(as_text=True)
        assert message in page
        assert 'enctype="multipart/form-data"' in page
        assert 'value="with pictures"' in page or ">with pictures</textarea>" in page
    assert await _counts(db) == before


async def test_a_picture_whose_header_passes_but_cannot_be_decoded_says_so(browser, db, pools):
    await make_user(db, "broken")
    await browser.login("broken")
    truncated = _noise_png(100)[:2000]
    response = await _post(browser, "oops", picture_1=_file(truncated), alt_1="Static")
    assert response.status_code == 303
    await run_app_jobs(pools)
    assert await db.fetchval("SELECT state FROM post_pictures") == "failed"
    assert "This picture could not be read." in await browser.text("/")


async def test_deleting_a_post_deletes_its_pictures(browser, db, pools):
    await make_user(db, "regret")
    await browser.login("regret")
    await _post(browser, "oops", picture_1=_file(_png()), alt_1="Green")
    await run_app_jobs(pools)
    post_id, picture_id = await db.fetchrow("SELECT post_id, id FROM post_pictures")
    assert (await browser.post(f"/posts/{post_id}/delete")).status_code == 303
    assert await db.fetchval("SELECT count(*) FROM post_pictures") == 0
    assert (await browser.get(f"/pictures/{picture_id}")).status_code == 404


async def test_a_post_over_the_request_limit_gets_the_form_with_a_message(browser, db):
    await make_user(db, "phone")
    await browser.login("phone")
    photo = _file(b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024), "photo.jpg")
    fields = {"csrf_token": await browser.csrf_token(), "body": "from my phone",
              "picture_1": photo, "alt_1": "A photo"}  # fmt: skip
    boundary, body = encode_multipart(fields)
    assert len(body) > LARGER_REQUESTS["/posts"]
    before = await _counts(db)
    for htmx in ("false", "true"):
        response = await browser.client.post(
            "/posts",
            data=body,
            headers={  # as a browser sends it
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(body)),
                "HX-Request": htmx,
            },
        )
        assert response.status_code == 413
        page = await response.get_data(as_text=True)
        assert "This post is larger than this site accepts." in page
        assert "Pictures can be at most 512 kB; this one is about 3 MB." in page
        assert 'id="compose"' in page
    assert await _counts(db) == before
