"""One open stream of live updates: what its reader may see, taken in id order, and the
messages waiting for them, both bounded.

A stream is given every event that could concern it (live/hub.py) and takes each in id order,
whether it comes from the replay of what the reader missed or live: it decides from what it
knows already (who its reader is, whom they follow, which page they have open) whether the
reader sees it, never with a query per event. A follow or unfollow of its reader's makes it
read the follow set again; meanwhile, as while it first catches up, the events given to it wait
in order. A reader who cannot keep up is told to reconnect (with their last id, so nothing is
lost) rather than having their messages pile up.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from microblog.live.queries import Event

# Events waiting while the stream catches up, and messages waiting for a slow reader: beyond
# this, the reader is told to reconnect.
BUFFER = 256
# A reader told to reconnect (too far behind) tries again after about this long.
RECONNECT_MS = 1000


def message(event: Event) -> bytes:
    """The event as server-sent events put it: its id, its type, and JSON data (ids and counts,
    never text). Follows tell only the stream itself to read its follow set again."""
    if event.kind == "post":
        data = {"post": event.post_id, "reply_to": event.in_reply_to}
    elif event.kind == "counts":
        data = {"post": event.post_id, "likes": event.like_count, "replies": event.reply_count}
    elif event.kind == "unread":
        data = {"unread": event.unread}
    else:
        return b""
    return f"id: {event.id}\nevent: {event.kind}\ndata: {_json(data)}\n\n".encode()


def reload(up_to: int) -> bytes:
    """What a reader whose missed events cannot be replayed gets instead of a gap."""
    return f"id: {up_to}\nevent: reload\ndata: {{}}\n\n".encode()


def retry(milliseconds: int) -> bytes:
    """How long a reader's browser waits before it reconnects, once this stream has ended."""
    return f"retry: {milliseconds}\n\n".encode()


def heartbeat(position: int | None) -> bytes:
    """A comment that keeps proxies from timing the stream out; with the stream's position,
    so that a reconnect replays from there rather than from the last event it showed."""
    return b": heartbeat\n\n" if position is None else f": heartbeat\nid: {position}\n\n".encode()


def _json(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))


class Stream:
    """The state of one reader's stream. The hub calls offer(); the stream's own task (the
    response being sent) calls the rest."""

    __slots__ = (
        "catching_up",
        "ending",
        "following",
        "hidden",
        "home",
        "out",
        "pending",
        "position",
        "shown_up_to",
        "stale",
        "thread",
        "up_to",
        "user_id",
        "wake",
    )

    def __init__(self, user_id: int, *, since: int | None, home: bool, thread: int | None):
        self.user_id = user_id
        self.home = home  # the home timeline is open: posts and counts of those followed
        self.thread = thread  # a thread's page is open: its new replies and their counts
        self.position = since  # the last event taken; None: from wherever the hub is
        self.shown_up_to = since  # the last id the reader was sent
        self.up_to: int | None = None  # where the live events took over (set by the hub)
        self.following: frozenset[int] = frozenset()
        self.hidden: frozenset[int] = frozenset()  # blocked either way or muted
        self.stale = True  # the follow set must be read (again) before events are taken
        self.catching_up = True
        self.pending: deque[tuple[Event, bytes]] = deque()
        self.out: deque[bytes] = deque()
        self.ending: bytes | None = None  # the last message, once the stream must end
        self.wake = asyncio.Event()

    @property
    def watching(self) -> bool:
        """Whether posts and counts concern this stream at all, beyond its reader's own events."""
        return self.home or self.thread is not None

    def offer(self, event: Event, encoded: bytes) -> None:
        """An event that may concern this stream, in id order."""
        if self.ending is not None:
            return
        if not self.catching_up:
            self.take(event, encoded)
        elif len(self.pending) < BUFFER:
            self.pending.append((event, encoded))
        else:
            self.end(retry(RECONNECT_MS))

    def take(self, event: Event, encoded: bytes) -> None:
        if self.position is not None and event.id <= self.position:
            return  # replayed already, or sent by the instance the reader came from
        self.position = event.id
        if event.kind == "follows":
            if event.recipient_id == self.user_id:
                self.stale = self.catching_up = True  # later events wait for the new set
                self.wake.set()
        elif self.sees(event):
            self.send(encoded)
            self.shown_up_to = event.id

    def sees(self, event: Event) -> bool:
        """Whether the reader may see this event and has a page open that shows it: their own
        counts; posts of those they follow (not their own, which the page that wrote them
        shows already) and counts of those and of their own; replies on the thread they have
        open; never anything of an author the reader has blocked, been blocked by or muted."""
        if event.kind == "unread":
            return event.recipient_id == self.user_id
        author = event.author_id
        if author in self.hidden:
            return False
        if event.kind == "post":
            if author == self.user_id:
                return False
            if self.home and author in self.following:
                return True
            return self.thread is not None and event.in_reply_to == self.thread
        if event.kind == "counts":
            if self.home and (author == self.user_id or author in self.following):
                return True
            return self.thread is not None and self.thread in (event.post_id, event.in_reply_to)
        return False

    def send(self, encoded: bytes) -> None:
        # While catching up the stream sends nothing yet; what it queues then is bounded by the
        # replay's limit and the pending events.
        if len(self.out) >= BUFFER and not self.catching_up:
            self.end(retry(RECONNECT_MS))
            return
        self.out.append(encoded)
        self.wake.set()

    def end(self, last: bytes) -> None:
        """End the stream after `last`, dropping what it had not sent yet: the reader's
        reconnect replays that from their last id."""
        if self.ending is None:
            self.ending = last
            self.out.clear()
            self.pending.clear()
            self.wake.set()

    def take_pending(self) -> None:
        """Take the events that waited, up to a follow change that needs a new follow set; once
        none wait, the stream is live."""
        while self.pending and not self.stale:
            self.take(*self.pending.popleft())
        if not self.stale and self.ending is None:
            self.catching_up = False

    def heartbeat(self) -> bytes:
        """A heartbeat, carrying the position when the reader has not been sent it."""
        if self.position is None or self.position == self.shown_up_to:
            return heartbeat(None)
        self.shown_up_to = self.position
        return heartbeat(self.position)
