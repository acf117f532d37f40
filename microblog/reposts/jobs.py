"""The job that follows a repost: telling the post's author. Like the other notification jobs
(posts/jobs.py) it re-reads the repost, so one that runs after an unrepost, or twice, does the
right thing."""

from __future__ import annotations

from microblog.jobs.registry import JobContext, job
from microblog.posts.jobs import tell_author
from microblog.reposts.queries import has_reposted


@job("notifications.post_reposted", max_attempts=8)
async def post_reposted(ctx: JobContext, *, post_id: int, user_id: int) -> None:
    await tell_author(ctx, "repost", post_id, user_id, has_reposted)
