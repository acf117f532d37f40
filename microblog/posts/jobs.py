"""Jobs that follow a post: telling those it replies to and mentions, and whose post is liked.

Each re-reads the current state, so a job that runs late (the like taken back, the post
deleted) or twice does the right thing. They keep their names in the notifications namespace:
what they make is notifications.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from microblog.jobs.registry import JobContext, job
from microblog.notifications.queries import add
from microblog.posts.queries import has_liked, post_author, post_facts


@job("notifications.post_created", max_attempts=8)
async def post_created(ctx: JobContext, *, post_id: int) -> None:
    """Tell the author of the post replied to, and everyone else mentioned: a reply that
    names the person it answers ("@ada thanks") tells them once, as a reply."""
    async with ctx.transaction() as conn:
        post = await post_facts(conn, post_id)
        if post is None:
            return  # deleted before the job ran
        recipients = []
        if post.parent_author_id is not None:
            recipients.append((post.parent_author_id, "reply"))
        recipients += [
            (user_id, "mention")
            for user_id in post.mentioned_ids
            if user_id != post.parent_author_id
        ]
        await add(conn, post.author_id, post_id, recipients)


Still = Callable[[asyncpg.Connection, int, int], Awaitable[bool]]


async def tell_author(ctx: JobContext, kind: str, post_id: int, user_id: int, still: Still) -> None:
    """Tell the post's author that the user did `kind` to it, if `still(conn, user_id,
    post_id)` says they have not undone it since."""
    async with ctx.transaction() as conn:
        author_id = await post_author(conn, post_id)
        if author_id is None or not await still(conn, user_id, post_id):
            return
        await add(conn, user_id, post_id, [(author_id, kind)])


@job("notifications.post_liked", max_attempts=8)
async def post_liked(ctx: JobContext, *, post_id: int, user_id: int) -> None:
    await tell_author(ctx, "like", post_id, user_id, has_liked)
