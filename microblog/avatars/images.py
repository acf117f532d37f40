"""Which uploads are pictures we serve: PNG, JPEG, GIF and WebP, recognised by their bytes.

The browser's claimed content type and the file name prove nothing; the first bytes of the
file do. SVG is not accepted: it can carry script.
"""

from __future__ import annotations

import hashlib

MAX_BYTES = 512 * 1024


def image_type(data: bytes) -> str | None:
    """The content type of a picture we accept, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def problem(data: bytes) -> str | None:
    """What is wrong with an upload as a picture, in words for the settings page; or None."""
    if not data:
        return "Choose a picture to upload."
    if len(data) > MAX_BYTES:
        return (
            f"Pictures can be at most {MAX_BYTES // 1024} kB; this one is {len(data) // 1024} kB."
        )
    if image_type(data) is None:
        return "Use a PNG, JPEG, GIF or WebP picture."
    return None
