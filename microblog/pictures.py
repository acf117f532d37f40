"""Pictures people upload: which we take, and what we serve in their place.

An upload is never served as sent. Its header is read first, and a picture of more pixels than
MAX_PIXELS is refused before anything is decoded: a file of a few hundred kilobytes can declare
400 megapixels, which every browser that showed it would have to decode. What is taken is
decoded (its first frame only: animations are not kept), turned upright as its EXIF orientation
says, cropped to a square, scaled, and encoded afresh as WebP, so what is served is always small
and carries nothing of the original file: no EXIF (camera, GPS position), no comments, no colour
profile.

Decoding takes CPU and memory, so it runs on DECODERS threads of its own, never on the event
loop: a burst of uploads waits its turn, each holding only its bytes, and at most DECODERS
pictures are decoded at once (a decoded picture takes up to 4 bytes per pixel).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 512 * 1024
MAX_SIDE_SHOWN = 4096  # for the message: MAX_PIXELS is this side squared
MAX_PIXELS = MAX_SIDE_SHOWN * MAX_SIDE_SHOWN
DECODERS = 2
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")  # Pillow's names; SVG is not a format we read
# How files of those formats begin: one that does but cannot be read is damaged.
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF")
SERVED_TYPE = "image/webp"
QUALITY = 85

NOT_A_PICTURE = "Use a PNG, JPEG, GIF or WebP picture."
TIMES = " \N{MULTIPLICATION SIGN} "
UNREADABLE = "That picture could not be read; it may be damaged. Try another one."

_decoders = ThreadPoolExecutor(DECODERS, thread_name_prefix="pictures")


class Refused(Exception):
    """Not a picture we take; the message says why, in words for the form."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def too_large(size: int | None, *, exactly: bool = True) -> Refused:
    """The refusal of an upload of `size` bytes (None: not known), said as people read sizes.
    Not `exactly`: the size is the whole request's, the picture's and a little more."""
    limit = f"Pictures can be at most {MAX_BYTES // 1024} kB"
    if size is None:
        return Refused(f"{limit}.", 413)
    this_one = _size(size) if exactly else f"about {_size(size, rounded=round)}"
    return Refused(f"{limit}; this one is {this_one}.", 413)


def _size(count: int, rounded=math.ceil) -> str:
    # Exact sizes are rounded up: one byte over the limit is never said to be the limit.
    if count < 1024 * 1024:
        return f"{rounded(count / 1024)} kB"
    return f"{rounded(count / (1024 * 1024) * 10) / 10:g} MB"


@dataclass(frozen=True)
class Encoded:
    """A picture as we serve it: WebP bytes and their size in pixels."""

    image: bytes
    width: int
    height: int


async def square(data: bytes, side: int) -> bytes:
    """The picture in `data` as a WebP square of `side` pixels, or Refused saying why not."""
    return await asyncio.get_running_loop().run_in_executor(_decoders, _square, data, side)


async def within(data: bytes, *sides: int) -> list[Encoded]:
    """The picture in `data` as WebP, once per side in `sides`: scaled down (never up) to fit
    a square of that side, its proportions kept; or Refused saying why not."""
    return await asyncio.get_running_loop().run_in_executor(_decoders, _within, data, sides)


async def check(data: bytes) -> None:
    """Refused unless `data` is a picture we take, judged by its size and header alone:
    nothing is decoded, so a request can afford it and leave the decoding to a job."""
    await asyncio.get_running_loop().run_in_executor(_decoders, _check, data)


def _square(data: bytes, side: int) -> bytes:
    with _opened(data) as picture:
        picture.draft("RGB", (side, side))  # JPEG: decode at the smallest scale that will do
        upright = _upright(picture)
        fitted = ImageOps.fit(upright, (side, side), Image.Resampling.LANCZOS)
    return _webp(fitted)


def _within(data: bytes, sides: tuple[int, ...]) -> list[Encoded]:
    with _opened(data) as picture:
        picture.draft("RGB", (max(sides), max(sides)))
        upright = _upright(picture)
        encoded = []
        for side in sides:
            scaled = upright.copy()
            scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
            encoded.append(Encoded(_webp(scaled), *scaled.size))
    return encoded


def _check(data: bytes) -> None:
    with _opened(data):
        pass


@contextmanager
def _opened(data: bytes) -> Iterator[Image.Image]:
    """The picture in `data`, opened (its header read) and within our bounds; every failure
    to read it, there or while the caller decodes it, said as a Refused."""
    if not data:
        raise Refused("Choose a picture to upload.")
    if len(data) > MAX_BYTES:
        raise too_large(len(data))
    try:
        with Image.open(BytesIO(data), formats=FORMATS) as picture:
            _check_pixels(*picture.size)
            yield picture
    except Image.DecompressionBombError:  # Pillow's own bound, far above ours: a bomb
        raise Refused(_pixels_message(), 413) from None
    except UnidentifiedImageError:
        raise Refused(UNREADABLE if data.startswith(SIGNATURES) else NOT_A_PICTURE) from None
    except (OSError, SyntaxError, ValueError, EOFError):  # what Pillow raises on broken files
        raise Refused(UNREADABLE) from None


def _upright(picture: Image.Image) -> Image.Image:
    upright = ImageOps.exif_transpose(picture)  # decodes the first frame
    return upright.convert("RGBA" if _has_alpha(upright) else "RGB")


def _webp(picture: Image.Image) -> bytes:
    served = BytesIO()
    # Only what is passed here is written: no EXIF, XMP or colour profile of the upload's.
    picture.save(served, "WEBP", quality=QUALITY)
    return served.getvalue()


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise Refused(_pixels_message(f"this one is {width}{TIMES}{height}"), 413)


def _pixels_message(this_one: str = "this one has far more") -> str:
    return (
        f"Pictures can have at most {MAX_PIXELS / 1e6:.1f} megapixels "
        f"({MAX_SIDE_SHOWN}{TIMES}{MAX_SIDE_SHOWN}); {this_one}."
    )


def _has_alpha(picture: Image.Image) -> bool:
    return picture.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in picture.info
