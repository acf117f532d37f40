"""The job that makes an uploaded picture ready: decoded once, off the request, and served
as WebP in two sizes. Re-encoding keeps nothing of the upload but its pixels (no EXIF, so no
camera or GPS position).

It reads the upload, decodes it holding no connection, and writes in one short transaction,
only if the picture still waits: a second run, or one after the post was deleted, changes
nothing.
"""

from __future__ import annotations

from microblog.jobs.registry import JobContext, job
from microblog.pictures import SERVED_TYPE, Refused, within
from microblog.post_pictures import queries

# The longest side of a picture as served, and of its thumbnail (twice what a post shows it
# at, for sharp screens).
FULL_SIDE = 1600
THUMB_SIDE = 640


@job("post_pictures.prepare", max_attempts=5, timeout=120.0)
async def prepare_picture(ctx: JobContext, *, picture_id: int) -> None:
    async with ctx.pools.primary.acquire() as conn:
        upload = await queries.original(conn, picture_id)
    if upload is None:
        return  # done already, or the post was deleted
    try:
        full, thumb = await within(upload, FULL_SIDE, THUMB_SIDE)
    except Refused:
        # Its header passed when it was posted, but it cannot be decoded: no retry will.
        async with ctx.transaction() as conn:
            await queries.give_up(conn, picture_id)
        return
    async with ctx.transaction() as conn:
        await queries.make_ready(
            conn, picture_id, full.image, thumb.image, (thumb.width, thumb.height), SERVED_TYPE
        )
