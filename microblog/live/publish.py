"""Which writes make live events: the writer every process's transactions end with
(microblog/duties.py registers it), so an event commits exactly when its write does."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from microblog.blocks.queries import BLOCKS
from microblog.db.transactions import Change
from microblog.follows.queries import FOLLOWS
from microblog.live.queries import write_events
from microblog.notifications.queries import UNREAD
from microblog.posts.queries import LIKES, POSTS, REPLIES

# Each change that shows live, and what its subjects are to the events table.
SHOWN = (POSTS, LIKES, REPLIES, UNREAD, FOLLOWS, BLOCKS)


async def publish_events(conn: asyncpg.Connection, changes: Mapping[Change, set[int]]) -> None:
    """The events of a transaction's changes, written in it: new posts, changed counts of
    likes and replies, changed counts of unread notifications, changed follow, block and mute
    sets."""
    if not any(change in changes for change in SHOWN):
        return
    nothing: set[int] = set()
    await write_events(
        conn,
        new_posts=changes.get(POSTS, nothing),
        counted_posts=changes.get(LIKES, nothing) | changes.get(REPLIES, nothing),
        unread_of=changes.get(UNREAD, nothing),
        # A block, a mute or their undoing changes whom a stream hears of, as a follow does.
        follows_of=changes.get(FOLLOWS, nothing) | changes.get(BLOCKS, nothing),
    )
