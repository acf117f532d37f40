"""Pictures for the seed's posts: a few drawn with Pillow, prepared as a post's are (served
WebP and thumbnail, post_pictures/jobs.py), and shown on about one post in a hundred, so the
demo and the benchmarks see posts with pictures. Each is drawn and encoded once, and shared
by every post that shows it: seeding stays fast."""

from __future__ import annotations

import random
from io import BytesIO

import asyncpg
from PIL import Image, ImageDraw, ImageOps

from microblog.pictures import SERVED_TYPE, within
from microblog.post_pictures.jobs import FULL_SIDE, THUMB_SIDE

PICTURED_PER = 100  # posts: one in this many shows pictures
MAX_PICTURED = 60
SIZE = (960, 640)
# (dark, light, shape colour, what it shows): the alt text says what is drawn.
SCENES = (
    ("#3b1f5c", "#f5a25d", "#ffe8a3", "An orange and purple sunset with a pale sun"),
    ("#0b3d2e", "#9fd8a4", "#f2f7d8", "Green hills under a light sky with three pale circles"),
    ("#0d2a4a", "#7fc8f8", "#ffffff", "A blue sea fading to the horizon with white dots"),
    ("#4a1010", "#f7c6c6", "#fff3e0", "A red and pink gradient with a cream moon"),
)


def _drawn(dark: str, light: str, shape: str, seed: int) -> bytes:
    rng = random.Random(seed)
    gradient = Image.linear_gradient("L").resize(SIZE)
    picture = ImageOps.colorize(gradient, dark, light)
    draw = ImageDraw.Draw(picture)
    for _ in range(3):
        x, y, r = rng.randrange(SIZE[0]), rng.randrange(SIZE[1] // 2), rng.randint(30, 90)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=shape)
    out = BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


async def insert_pictures(conn: asyncpg.Connection, post_ids: list[int], seed: int) -> int:
    """Pictures on some of these posts (one to three each); how many posts got them."""
    count = min(len(post_ids) // PICTURED_PER, MAX_PICTURED)
    if not count:
        return 0
    prepared = []
    for n, (dark, light, shape, alt) in enumerate(SCENES):
        full, thumb = await within(_drawn(dark, light, shape, seed + n), FULL_SIDE, THUMB_SIDE)
        prepared.append((full, thumb, alt))
    rng = random.Random(seed + 6)
    rows, pictured = [], {}
    for post_id in sorted(rng.sample(post_ids, count)):
        pictured[post_id] = rng.randint(1, 3)
        for position, (full, thumb, alt) in enumerate(rng.sample(prepared, pictured[post_id]), 1):
            rows.append((post_id, position, alt, "ready", SERVED_TYPE, full.image, thumb.image,
                         thumb.width, thumb.height))  # fmt: skip
    await conn.copy_records_to_table(
        "post_pictures",
        records=rows,
        columns=["post_id", "position", "alt", "state", "content_type", "image", "thumb",
                 "thumb_width", "thumb_height"],
    )  # fmt: skip
    await conn.execute(
        """
        UPDATE posts SET picture_count = pictured.count
        FROM unnest($1::bigint[], $2::smallint[]) AS pictured (id, count)
        WHERE posts.id = pictured.id
        """,
        list(pictured),
        list(pictured.values()),
    )
    return count
