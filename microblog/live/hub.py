"""Every live stream of one process, fed from the events table.

The process's listener (runtime.listening) hears a notification for each transaction that
wrote events; the hub then reads every event after the last one it has (one query for the
whole process, however many streams) and offers each to the streams it may concern, in id
order. While the listener is down, the hub polls the table instead, so a lost connection
delays events and loses none. A new stream catches up first: it replays from the events table
what its reader missed (on any instance), and the hub keeps what arrives meanwhile for it.

No stream holds a database connection: a stream's own queries (its reader's follow set, its
replay) borrow one from the pool for a moment, as a page does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress

import asyncpg

from microblog.db.listen import Channel
from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire
from microblog.live import queries
from microblog.live.queries import CHANNEL, Event
from microblog.live.stream import Stream, message, reload, retry

log = logging.getLogger(__name__)

# While not listening, the hub reads the table this often.
POLL_INTERVAL = 0.5
# A stream that has been silent this long sends a comment, so proxies keep it open.
HEARTBEAT_INTERVAL = 15.0
# Events read in one query; a bigger backlog takes several.
BATCH = 500
# A reader who missed more of what they see than this is told to reload the page instead.
REPLAY_LIMIT = 200
# How long a query of the hub's waits for a connection from the pool.
ACQUIRE_TIMEOUT = 5.0
# Browsers reconnect after this long (ms) when a stream ends; a draining instance spreads its
# readers' reconnects over RETRY_SPREAD, so the other instances are not hit all at once.
RETRY = 2000
RETRY_SPREAD = (500, 3000)
# Kinds of events meant for one user only.
PERSONAL = frozenset({"unread", "follows"})

# Whom the reader follows, and whom they must not hear of (blocked either way, or muted).
LoadFollowing = Callable[[asyncpg.Connection], Awaitable[tuple[set[int], set[int]]]]


class Hub:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.position: int | None = None  # every event up to here has been offered
        self._listening = False
        self._nudge = asyncio.Event()
        self._closing = False
        self._streams: set[Stream] = set()
        self._watching: set[Stream] = set()  # those that posts and counts may concern
        self._by_user: dict[int, set[Stream]] = {}
        self._failing = False

    @property
    def stream_count(self) -> int:
        """Streams open on this process (a gauge for monitoring)."""
        return len(self._streams)

    # --- following the events table ---------------------------------------------------

    def channel(self) -> Channel:
        """What the process's listener hears new events on."""
        return Channel(CHANNEL, self._notified, on_listening=self._started, on_lost=self._lost)

    def _notified(self, payload: str) -> None:
        if self.position is None or not payload.isdecimal() or int(payload) > self.position:
            self._nudge.set()

    def _started(self) -> None:
        self._listening = True
        self._nudge.set()  # what was written while no one listened

    def _lost(self) -> None:
        self._listening = False
        self._nudge.set()  # poll from now on

    async def keep_up(self, stop: asyncio.Event) -> None:
        """Offer new events to the streams until stop: when notified, and every POLL_INTERVAL
        while not listening."""
        stopping = asyncio.create_task(self._nudge_when(stop))
        try:
            while not stop.is_set():
                self._nudge.clear()
                try:
                    await self._catch_up()
                except Exception:
                    # Not an outage (those pass): a bug. Seen in the log, and tried again.
                    log.exception("live events: reading them failed")
                with suppress(TimeoutError):
                    async with asyncio.timeout(None if self._listening else POLL_INTERVAL):
                        await self._nudge.wait()
        finally:
            stopping.cancel()

    async def _nudge_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._nudge.set()

    async def _catch_up(self) -> None:
        try:
            async with acquire(self._pool, ACQUIRE_TIMEOUT) as conn:
                if self.position is None:
                    self.position = await queries.newest_id(conn)
                while len(events := await queries.events_after(conn, self.position, BATCH)):
                    for event in events:
                        self._fan_out(event)
                    if len(events) < BATCH:
                        break
        except DATABASE_OUTAGE as error:
            if not self._failing:
                log.warning("live events: cannot read them", extra={"error": type(error).__name__})
            self._failing = True
            return
        if self._failing:
            log.info("live events: reading them again")
            self._failing = False

    def _fan_out(self, event: Event) -> None:
        encoded = message(event)
        if event.kind in PERSONAL:
            streams = self._by_user.get(event.recipient_id, ())
        else:
            streams = self._watching
        for stream in streams:
            stream.offer(event, encoded)
        self.position = event.id

    # --- the streams ------------------------------------------------------------------

    async def stream(self, stream: Stream, load_following: LoadFollowing) -> AsyncIterator[bytes]:
        """What the reader's response sends: a retry hint, what they missed, then live
        events and heartbeats, until they go, the stream ends, or the process drains."""
        self._add(stream)
        try:
            # Sent at once, once the stream is registered: from here on, nothing is missed.
            yield retry(RETRY)
            if not await self._caught_up(stream, load_following, replay=True):
                yield retry(RETRY)
                return
            while True:
                if stream.ending is not None:
                    yield stream.ending
                    return
                if stream.out:
                    sending = b"".join(stream.out)
                    stream.out.clear()
                    yield sending
                elif stream.catching_up:
                    if not await self._caught_up(stream, load_following, replay=False):
                        yield retry(RETRY)
                        return
                else:
                    stream.wake.clear()
                    try:
                        async with asyncio.timeout(HEARTBEAT_INTERVAL):
                            await stream.wake.wait()
                    except TimeoutError:
                        yield stream.heartbeat()
        finally:
            self._remove(stream)

    def _add(self, stream: Stream) -> None:
        stream.up_to = self.position
        if stream.position is None:
            stream.position = stream.shown_up_to = self.position
        self._streams.add(stream)
        self._by_user.setdefault(stream.user_id, set()).add(stream)
        if stream.watching:
            self._watching.add(stream)
        if self._closing:
            stream.end(self._drain_retry())

    def _remove(self, stream: Stream) -> None:
        self._streams.discard(stream)
        self._watching.discard(stream)
        users = self._by_user.get(stream.user_id)
        if users is not None:
            users.discard(stream)
            if not users:
                del self._by_user[stream.user_id]

    async def _caught_up(
        self, stream: Stream, load_following: LoadFollowing, *, replay: bool
    ) -> bool:
        """Read the follow and hidden sets (and, the first time, replay what the reader
        missed), then take what waited; False when the database cannot be read."""
        try:
            while stream.catching_up and stream.ending is None:
                async with acquire(self._pool, ACQUIRE_TIMEOUT) as conn:
                    if stream.stale:
                        stream.stale = False
                        following, hidden = await load_following(conn)
                        stream.following = frozenset(following - hidden)
                        stream.hidden = frozenset(hidden)
                    if replay:
                        replay = False
                        await self._replay(conn, stream)
                stream.take_pending()
        except DATABASE_OUTAGE:
            return False
        return True

    async def _replay(self, conn: asyncpg.Connection, stream: Stream) -> None:
        since, up_to = stream.position, stream.up_to
        if since == up_to:
            return
        horizon = await queries.horizon(conn)
        if since < horizon.trimmed_up_to or since > horizon.last_taken:
            self._reload(stream)  # trimmed meanwhile, or from another database altogether
            return
        if since > up_to:
            return  # the instance the reader came from was ahead of this one; live takes over
        missed = await queries.replay(
            conn,
            after=since,
            up_to=up_to,
            user_id=stream.user_id,
            authors=stream.following | {stream.user_id} if stream.home else (),
            thread=stream.thread,
            limit=REPLAY_LIMIT + 1,
        )
        if len(missed) > REPLAY_LIMIT:
            self._reload(stream)
            return
        for event in missed:
            stream.take(event, message(event))
        stream.position = up_to

    @staticmethod
    def _reload(stream: Stream) -> None:
        stream.position = stream.shown_up_to = stream.up_to
        stream.send(reload(stream.up_to))

    # --- draining ---------------------------------------------------------------------

    def close_streams(self) -> None:
        """End every stream now, and any that opens from now on, with a retry hint: the
        process is draining, and the browsers reconnect to another instance."""
        self._closing = True
        for stream in self._streams:
            stream.end(self._drain_retry())

    @staticmethod
    def _drain_retry() -> bytes:
        return retry(random.randint(*RETRY_SPREAD))
