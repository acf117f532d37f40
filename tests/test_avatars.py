"""Profile pictures: uploaded from settings, checked by their header, re-encoded small and
bare, served by any instance."""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import threading
import time
import zlib
from io import BytesIO

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from microblog import pictures
from microblog.app import MAX_REQUEST_BYTES
from microblog.avatars.routes import SIDE
from microblog.pictures import DECODERS, MAX_BYTES, MAX_SIDE_SHOWN
from tests.conftest import make_post, make_user

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _upload(data: bytes, name: str = "me.png", content_type: str = "image/png") -> dict:
    return {"avatar": FileStorage(BytesIO(data), filename=name, content_type=content_type)}


def _encoded(picture: Image.Image, format: str, **options) -> bytes:
    out = BytesIO()
    picture.save(out, format, **options)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _black_png(width: int, height: int) -> bytes:
    """A real, valid one-bit PNG of any size, made row by row: a 20000 x 20000 one is 50 MB of
    pixels in about 40 kB of file."""
    compressor, row = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", pixels)
        + (_chunk(b"IEND", b""))
    )


async def _served(browser, username: str) -> Image.Image:
    response = await browser.get(f"/@{username}/avatar")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/webp"
    picture = Image.open(BytesIO(await response.get_data()))
    picture.load()
    return picture


def _colour_at(picture: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    red, green, blue = picture.convert("RGB").getpixel((x, y))
    # Lossy encoding moves colours a little: round each channel to full or nothing.
    return tuple(255 if channel > 127 else 0 for channel in (red, green, blue))


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
    assert served.headers["Content-Type"] == "image/webp"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert Image.open(BytesIO(await served.get_data())).size == (SIDE, SIDE)
    unversioned = await browser.get("/@pictured/avatar")
    assert unversioned.headers["Cache-Control"] == "no-cache"
    again = await browser.get("/@pictured/avatar", headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("data", "name", "content_type", "status", "message"),
    [
        (b"", "empty.png", "image/png", 422, "Choose a picture to upload."),
        (b"just some text", "fake.png", "image/png", 422, "Use a PNG, JPEG, GIF or WebP picture."),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.svg",
            "image/svg+xml",
            422,
            "Use a PNG, JPEG, GIF or WebP picture.",
        ),
        (PNG[:40], "cut.png", "image/png", 422, "That picture could not be read"),
        (
            b"\0" * (MAX_BYTES + 1),
            "big.png",
            "image/png",
            413,
            "Pictures can be at most 512 kB; this one is 513 kB.",
        ),
        (
            _black_png(MAX_SIDE_SHOWN + 1, MAX_SIDE_SHOWN),
            "wide.png",
            "image/png",
            413,
            "Pictures can have at most 16.8 megapixels (4096 \N{MULTIPLICATION SIGN} 4096); "
            "this one is 4097 \N{MULTIPLICATION SIGN} 4096.",
        ),
    ],
    ids=["empty", "text", "svg", "truncated", "one-byte-over", "one-column-over"],
)
async def test_what_is_not_a_picture_we_take_is_refused_on_the_form(
    browser, db, data, name, content_type, status, message
):
    await make_user(db, "careful")
    await browser.login("careful")
    response = await browser.post("/settings/avatar", files=_upload(data, name, content_type))
    assert response.status_code == status
    page = await response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert await db.fetchval("SELECT count(*) FROM avatars") == 0


async def test_a_decompression_bomb_is_refused_from_its_header_without_being_decoded(browser, db):
    bomb = _black_png(20000, 20000)  # 400 megapixels in a few dozen kilobytes
    assert len(bomb) < MAX_BYTES
    await make_user(db, "bomber")
    await browser.login("bomber")
    started = time.monotonic()
    response = await browser.post("/settings/avatar", files=_upload(bomb, "bomb.png"))
    assert time.monotonic() - started < 2  # decoding it would take many seconds and 400 MB
    assert response.status_code == 413
    assert "Pictures can have at most 16.8 megapixels" in await response.get_data(as_text=True)
    assert await db.fetchval("SELECT count(*) FROM avatars") == 0


async def test_a_picture_at_the_pixel_bound_is_taken(browser, db):
    await make_user(db, "largest")
    await browser.login("largest")
    response = await browser.post(
        "/settings/avatar", files=_upload(_black_png(MAX_SIDE_SHOWN, MAX_SIDE_SHOWN))
    )
    assert response.status_code == 303
    assert (await _served(browser, "largest")).size == (SIDE, SIDE)


async def test_an_upload_over_the_request_limit_gets_the_same_inline_error(browser, db):
    await make_user(db, "phone_photo")
    await browser.login("phone_photo")
    photo = FileStorage(BytesIO(b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024)), "photo.jpg")
    fields = {"csrf_token": await browser.csrf_token(), "avatar": photo}
    boundary, body = encode_multipart(fields)
    assert len(body) > MAX_REQUEST_BYTES
    response = await browser.client.post(
        "/settings/avatar",
        data=body,
        headers={  # as a browser sends it
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(body)),
        },
    )
    assert response.status_code == 413
    page = await response.get_data(as_text=True)
    assert '<h1 class="page-title">Settings</h1>' in page
    assert "Pictures can be at most 512 kB; this one is about 3 MB." in page
    assert 'aria-invalid="true"' in page
    assert await db.fetchval("SELECT count(*) FROM avatars") == 0


async def test_what_is_served_is_a_square_of_fixed_size_without_the_uploads_metadata(browser, db):
    # 200 x 100, red above blue, stored sideways: EXIF says to turn it a quarter clockwise,
    # which puts blue on the left and red on the right. And a position, as phones write.
    photo = Image.new("RGB", (200, 100), BLUE)
    photo.paste(RED, (0, 0, 200, 50))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)  # GPSLatitude
    upload = _encoded(photo, "JPEG", exif=exif, quality=95)
    assert b"PhoneMaker" in upload
    await make_user(db, "traveller")
    await browser.login("traveller")
    response = await browser.post("/settings/avatar", files=_upload(upload, "trip.jpg"))
    assert response.status_code == 303
    served = await _served(browser, "traveller")
    assert served.size == (SIDE, SIDE)
    assert served.format == "WEBP"
    assert not served.getexif()
    assert not {"exif", "xmp", "icc_profile"} & served.info.keys()
    stored = await db.fetchval("SELECT image FROM avatars")
    assert b"PhoneMaker" not in stored
    assert _colour_at(served, SIDE // 8, SIDE // 4) == BLUE
    assert _colour_at(served, SIDE * 7 // 8, SIDE // 4) == RED


async def test_an_animated_picture_is_taken_as_its_first_frame(browser, db):
    frames = [Image.new("RGB", (64, 64), colour) for colour in (RED, BLUE)]
    gif = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(BytesIO(gif)).n_frames == 2
    await make_user(db, "animated")
    await browser.login("animated")
    response = await browser.post("/settings/avatar", files=_upload(gif, "moving.gif"))
    assert response.status_code == 303
    served = await _served(browser, "animated")
    assert getattr(served, "n_frames", 1) == 1
    assert _colour_at(served, SIDE // 2, SIDE // 2) == RED
    assert "an animated picture shows its first frame" in await browser.text("/settings")


async def test_a_transparent_picture_stays_transparent(browser, db):
    badge = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    badge.paste((255, 0, 0, 255), (25, 25, 75, 75))
    await make_user(db, "cutout")
    await browser.login("cutout")
    assert (
        await browser.post("/settings/avatar", files=_upload(_encoded(badge, "PNG")))
    ).status_code == 303
    served = await _served(browser, "cutout")
    assert served.mode == "RGBA"
    assert served.getpixel((2, 2))[3] == 0
    assert served.getpixel((SIDE // 2, SIDE // 2))[3] == 255


async def test_pictures_are_decoded_on_a_few_threads_of_their_own(make_browser, db, monkeypatch):
    loop_thread = threading.current_thread().name
    lock, running, seen = threading.Lock(), [0], {"most": 0, "threads": set()}
    # Each decode waits for as many as may run at once, so that they do overlap: fewer
    # threads would break the barrier, more would show in "most".
    together = threading.Barrier(DECODERS, timeout=10)
    decode = pictures._square

    def watched(data: bytes, side: int) -> bytes:
        with lock:
            running[0] += 1
            seen["most"] = max(seen["most"], running[0])
            seen["threads"].add(threading.current_thread().name)
        try:
            together.wait()
            return decode(data, side)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(pictures, "_square", watched)
    visitors = []
    for n in range(DECODERS * 3):
        await make_user(db, f"burst{n}")
        visitor = make_browser()
        await visitor.login(f"burst{n}")
        visitors.append(visitor)
    responses = await asyncio.gather(
        *(visitor.post("/settings/avatar", files=_upload(PNG)) for visitor in visitors)
    )
    assert [response.status_code for response in responses] == [303] * len(visitors)
    assert seen["most"] == DECODERS
    assert loop_thread not in seen["threads"]
    assert all(name.startswith("pictures") for name in seen["threads"])


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
