"""The job that follows a follow: telling the one followed. It re-reads the follow, so a job
that runs after an unfollow, or twice, does the right thing."""

from __future__ import annotations

from microblog.follows.queries import is_following
from microblog.jobs.registry import JobContext, job
from microblog.notifications.queries import add


@job("notifications.followed", max_attempts=8)
async def followed(ctx: JobContext, *, follower_id: int, followee_id: int) -> None:
    async with ctx.transaction() as conn:
        if await is_following(conn, follower_id, followee_id):
            await add(conn, follower_id, None, [(followee_id, "follow")])
