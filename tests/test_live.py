"""GET /events: live updates in one process, through the app's own listener and hub; what each
stream carries and to whom, what a reconnect replays, and how streams end.

The tests across instances, through nginx and in Chromium are in tests/e2e/test_live_updates.py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from microblog.app import create_app
from microblog.db.transactions import without_duties
from microblog.follows.queries import follow
from microblog.live import hub as hub_module
from microblog.live.hub import Hub
from microblog.live.queries import Event, trim, write_events
from microblog.live.stream import BUFFER, Stream
from microblog.notifications.queries import add
from microblog.posts.queries import create_post
from tests.conftest import Browser, make_post, make_user, wait_until
from tests.sse import Message, Parser
from tests.test_metrics import scrape, value

EVENT_STREAM = {"Accept": "text/event-stream"}


class Reader:
    """The messages of one open stream, as they arrive."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self._parser = Parser()
        self._waiting: deque[Message] = deque()

    async def next(self, within: float = 5.0) -> Message:
        while not self._waiting:
            data = await asyncio.wait_for(self.connection.receive(), within)
            self._waiting.extend(self._parser.feed(data))
        return self._waiting.popleft()

    async def event(self, within: float = 5.0) -> Message:
        """The next message that is an event (not a comment or a hint)."""
        while True:
            message = await self.next(within)
            if message.event:
                return message

    async def ended(self, within: float = 5.0) -> list[Message]:
        """Every message up to the end of the stream (the app's last, empty, body part)."""
        seen = list(self._waiting)
        self._waiting.clear()
        while (data := await asyncio.wait_for(self.connection.receive(), within)) != b"":
            seen.extend(self._parser.feed(data))
        return seen


@asynccontextmanager
async def opened(
    browser: Browser, path: str = "/events?home=1", headers: dict | None = None
) -> AsyncIterator[Reader]:
    async with browser.client.request(path, headers={**EVENT_STREAM, **(headers or {})}) as conn:
        await conn.send_complete()
        reader = Reader(conn)
        first = await reader.next()
        assert conn.status_code == 200
        assert first.retry is not None  # sent at once: the browser knows the stream is open
        try:
            yield reader
        finally:
            await conn.disconnect()


async def signed_in(make_browser, user) -> Browser:
    browser = make_browser()
    await browser.sign_in(user)
    return browser


async def ready(live: Hub) -> None:
    await wait_until(lambda: _has_position(live))


async def _has_position(live: Hub) -> bool:
    return live.position is not None


async def post(browser: Browser, db, body: str, in_reply_to: int | None = None) -> int:
    """Post as the browser's user, through the app; the new post's id."""
    form = {"body": body} | ({"in_reply_to": str(in_reply_to)} if in_reply_to else {})
    response = await browser.post("/posts", form)
    assert response.status_code == 303, await response.get_data(as_text=True)
    return await db.fetchval("SELECT max(id) FROM posts WHERE body = $1", body)


async def follows(db, follower, followee) -> None:
    async with without_duties(db):
        await follow(db, follower.id, followee.id)


async def test_a_post_reaches_the_home_streams_of_its_followers_and_no_one_elses(
    app, live, db, make_browser
):
    author, fan, stranger = [await make_user(db, name) for name in ("author", "fan", "stranger")]
    await follows(db, fan, author)
    await ready(live)
    writer = await signed_in(make_browser, author)
    async with (
        opened(await signed_in(make_browser, fan)) as fans,
        opened(await signed_in(make_browser, stranger)) as strangers,
        opened(writer) as authors,
    ):
        post_id = await post(writer, db, "for my followers")
        seen = await fans.event()
        assert (seen.event, seen.json) == ("post", {"post": post_id, "reply_to": None})
        # The stranger sees their own notification count next, and nothing before it.
        async with app.extensions["microblog"].transactions() as conn:
            await add(conn, author.id, post_id, [(stranger.id, "mention")])
        assert (await strangers.event()).event == "unread"
        # The author's page shows their post already: nothing, until their own count moves.
        await writer.post(f"/posts/{post_id}/like")
        counted = await authors.event()
        assert (counted.event, counted.json) == (
            "counts",
            {"post": post_id, "likes": 1, "replies": 0},
        )


async def test_a_notification_count_reaches_only_its_recipients_streams(
    app, live, db, make_browser
):
    actor, recipient, other = [
        await make_user(db, name) for name in ("actor", "recipient", "other")
    ]
    post_id = await make_post(db, recipient, "notice me")
    await ready(live)
    transactions = app.extensions["microblog"].transactions
    async with (
        opened(await signed_in(make_browser, recipient), "/events") as theirs,
        opened(await signed_in(make_browser, other), "/events") as others,
    ):
        async with transactions() as conn:
            await add(conn, actor.id, post_id, [(recipient.id, "like")])
        seen = await theirs.event()
        assert (seen.event, seen.json) == ("unread", {"unread": 1})
        async with transactions() as conn:
            await add(conn, actor.id, None, [(other.id, "follow")])
        assert (await others.event()).json == {"unread": 1}  # theirs, and only theirs
        reading = await signed_in(make_browser, recipient)
        assert (await reading.get("/notifications")).status_code == 200
        assert (await theirs.event()).json == {"unread": 0}  # read in another tab


async def test_new_replies_and_their_counts_reach_the_stream_of_their_threads_page(
    live, db, make_browser
):
    asker, answerer, reader = [
        await make_user(db, name) for name in ("asker", "answerer", "reader")
    ]
    question = await make_post(db, asker, "a question")
    elsewhere = await make_post(db, asker, "another thread")
    await ready(live)
    answering = await signed_in(make_browser, answerer)
    async with opened(await signed_in(make_browser, reader), f"/events?thread={question}") as page:
        await post(answering, db, "not here", in_reply_to=elsewhere)
        answer = await post(answering, db, "an answer", in_reply_to=question)
        seen = await page.event()
        assert (seen.event, seen.json) == ("post", {"post": answer, "reply_to": question})
        assert (await page.event()).json == {"post": question, "likes": 0, "replies": 1}
        await answering.post(f"/posts/{answer}/like")
        assert (await page.event()).json == {"post": answer, "likes": 1, "replies": 0}


async def test_a_follow_shows_the_new_followees_posts_at_once_and_an_unfollow_stops_them(
    live, db, make_browser
):
    reader, writer = await make_user(db, "reader"), await make_user(db, "writer")
    mine = await make_post(db, reader, "the reader's own")
    await ready(live)
    reading, writing = await signed_in(make_browser, reader), await signed_in(make_browser, writer)
    async with opened(reading) as home:
        assert (await reading.post("/@writer/follow")).status_code == 303
        first = await post(writing, db, "now you see me")
        assert (await home.event()).json == {"post": first, "reply_to": None}
        assert (await reading.post("/@writer/unfollow")).status_code == 303
        await post(writing, db, "now you do not")
        await writing.post(f"/posts/{mine}/like")  # a card the reader's home page shows
        seen = await home.event()
        assert seen.json == {"post": mine, "likes": 1, "replies": 0}, "an unfollowed post came"


async def test_a_muted_followee_and_a_blocked_replier_are_heard_of_no_more(live, db, make_browser):
    reader, followee, replier, asker = [
        await make_user(db, name) for name in ("reader", "followee", "replier", "asker")
    ]
    await follows(db, reader, followee)
    question = await make_post(db, asker, "a question")
    mine = await make_post(db, reader, "the reader's own")
    await ready(live)
    reading = await signed_in(make_browser, reader)
    writing, replying, asking = [
        await signed_in(make_browser, user) for user in (followee, replier, asker)
    ]
    async with opened(reading) as home, opened(reading, f"/events?thread={question}") as thread:
        assert (await reading.post("/@followee/mute")).status_code == 303
        assert (await reading.post("/@replier/block")).status_code == 303
        await post(writing, db, "muted, so never shown")
        await post(replying, db, "blocked, so never shown", in_reply_to=question)
        await writing.post(f"/posts/{mine}/like")  # the reader's own card: that still shows
        assert (await home.event()).json == {"post": mine, "likes": 1, "replies": 0}
        # The thread's count moves (the page counts every reply), but the reply is not shown.
        assert (await thread.event()).json == {"post": question, "likes": 0, "replies": 1}
        answer = await post(asking, db, "the asker answers", in_reply_to=question)
        assert (await thread.event()).json == {"post": answer, "reply_to": question}
        assert (await reading.post("/@followee/unmute")).status_code == 303
        again = await post(writing, db, "unmuted, shown again")
        assert (await home.event()).json == {"post": again, "reply_to": None}


@pytest.mark.parametrize("resume", ["Last-Event-ID", "since"])
async def test_a_reconnect_replays_every_missed_event_once_in_order_then_goes_on_live(
    resume, live, db, make_browser
):
    reader, writer = await make_user(db, "reader"), await make_user(db, "writer")
    await follows(db, reader, writer)
    await ready(live)
    reading, writing = await signed_in(make_browser, reader), await signed_in(make_browser, writer)
    async with opened(reading) as home:
        await post(writing, db, "seen live")
        last_id = (await home.event()).id
    missed = [await post(writing, db, f"missed {n}") for n in range(3)]
    if resume == "since":
        again = opened(reading, f"/events?home=1&since={last_id}")
    else:
        again = opened(reading, headers={"Last-Event-ID": str(last_id)})
    async with again as home:
        replayed = [await home.event() for _ in missed]
        assert [message.json["post"] for message in replayed] == missed
        assert all(message.id > last_id for message in replayed)
        assert [message.id for message in replayed] == sorted({m.id for m in replayed})
        live_one = await post(writing, db, "live again")
        assert (await home.event()).json["post"] == live_one  # nothing replayed twice


async def test_a_replay_carries_only_what_the_reader_may_see(app, live, db, make_browser):
    reader, followed, stranger = [
        await make_user(db, n) for n in ("reader", "followed", "stranger")
    ]
    await follows(db, reader, followed)
    await ready(live)
    reading = await signed_in(make_browser, reader)
    since = live.position
    await post(await signed_in(make_browser, stranger), db, "not followed")
    async with app.extensions["microblog"].transactions() as conn:
        await add(conn, followed.id, None, [(stranger.id, "follow")])  # the stranger's count
    shown = await post(await signed_in(make_browser, followed), db, "followed")
    async with opened(reading, f"/events?home=1&since={since}") as home:
        # Replayed in id order: anything of the stranger's would have come first.
        assert (await home.event()).json == {"post": shown, "reply_to": None}


async def test_a_reconnect_from_before_what_is_kept_is_told_to_reload(live, db, make_browser):
    reader, writer = await make_user(db, "reader"), await make_user(db, "writer")
    await follows(db, reader, writer)
    await ready(live)
    since = live.position
    writing = await signed_in(make_browser, writer)
    await post(writing, db, "trimmed away")
    await db.execute("UPDATE events SET created_at = created_at - interval '2 hours'")
    assert await trim(db, 3600) >= 1
    await post(writing, db, "kept")
    reading = await signed_in(make_browser, reader)
    async with opened(reading, f"/events?home=1&since={since}") as home:
        assert (await home.event()).event == "reload"
        # It goes on from where the replay would have ended: "kept" is not sent after all.
        newer = await post(writing, db, "after the reload")
        assert (await home.event()).json["post"] == newer


async def test_a_reconnect_from_an_id_never_given_is_told_to_reload(live, db, make_browser):
    reader = await make_user(db, "reader")
    await ready(live)
    async with opened(await signed_in(make_browser, reader), "/events?since=999999") as stream:
        assert (await stream.event()).event == "reload"


async def test_a_replay_longer_than_the_limit_is_a_reload(live, db, make_browser, monkeypatch):
    monkeypatch.setattr(hub_module, "REPLAY_LIMIT", 2)
    reader, writer = await make_user(db, "reader"), await make_user(db, "writer")
    await follows(db, reader, writer)
    await ready(live)
    since = live.position
    writing = await signed_in(make_browser, writer)
    for n in range(3):
        await post(writing, db, f"one of many {n}")
    async with opened(
        await signed_in(make_browser, reader), f"/events?home=1&since={since}"
    ) as home:
        assert (await home.event()).event == "reload"


async def test_events_take_their_ids_in_commit_order(pools, db):
    author = await make_user(db, "author")
    first_post, second_post = await make_post(db, author, "1"), await make_post(db, author, "2")
    async with pools.primary.acquire() as first, pools.primary.acquire() as second:
        async with first.transaction():
            await write_events(first, new_posts=[first_post])
            # The second writer waits for the first to commit before it takes an id.
            later = asyncio.create_task(_write_in_transaction(second, second_post))
            done, _ = await asyncio.wait([later], timeout=0.3)
            assert not done, "a second transaction wrote events while the first held ids"
        await later
    rows = await db.fetch("SELECT post_id FROM events ORDER BY id")
    assert [row["post_id"] for row in rows] == [first_post, second_post]


async def _write_in_transaction(conn, post_id: int) -> None:
    async with conn.transaction():
        await write_events(conn, new_posts=[post_id])


async def test_a_write_that_rolls_back_leaves_no_event(app, db):
    author = await make_user(db, "author")

    async def fails_after_writing() -> None:
        async with app.extensions["microblog"].transactions() as conn:
            await create_post(conn, author.id, "never", set(), set())
            raise RuntimeError("the rest of the action failed")

    with pytest.raises(RuntimeError):
        await fails_after_writing()
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_without_a_session_an_event_source_is_told_so_and_anything_else_gets_401(
    app, live, client
):
    await ready(live)
    response = await client.get("/events", headers=EVENT_STREAM)
    assert response.status_code == 200
    assert await response.get_data() == b"event: signed-out\ndata: {}\n\n"
    assert (await client.get("/events")).status_code == 401


async def test_a_stream_is_unbuffered_uncached_and_sends_heartbeats(
    live, db, make_browser, monkeypatch
):
    monkeypatch.setattr(hub_module, "HEARTBEAT_INTERVAL", 0.05)
    reader = await make_user(db, "reader")
    await ready(live)
    async with opened(await signed_in(make_browser, reader), "/events") as stream:
        headers = stream.connection.headers
        assert headers["Content-Type"] == "text/event-stream"
        assert headers["X-Accel-Buffering"] == "no"
        assert headers["Cache-Control"] == "no-store"
        assert (await stream.next()).comment == "heartbeat"


async def test_bad_cursors_get_400(live, db, make_browser):
    await ready(live)
    browser = await signed_in(make_browser, await make_user(db, "reader"))
    for path, headers in (
        ("/events?since=yesterday", {}),
        ("/events?thread=-1", {}),
        ("/events", {"Last-Event-ID": "x"}),
    ):
        assert (await browser.get(path, headers=headers)).status_code == 400, path


async def test_draining_ends_every_stream_with_a_retry_hint_and_refuses_new_ones(
    app, live, db, make_browser
):
    reader = await make_user(db, "reader")
    await ready(live)
    browser = await signed_in(make_browser, reader)
    async with opened(browser, "/events") as first, opened(browser, "/events?home=1") as second:
        assert live.stream_count == 2  # the gauge of open streams
        live.close_streams()
        for stream in (first, second):
            assert (await stream.ended())[-1].retry is not None
        assert live.stream_count == 0
        app.extensions["microblog"].draining.set()
        assert (await browser.get("/events")).status_code == 503


async def test_pages_of_a_logged_in_reader_name_their_stream_and_others_none(
    live, db, make_browser, client
):
    author = await make_user(db, "author")
    post_id = await make_post(db, author, "a post")
    await ready(live)
    assert "data-live-events" not in await Browser(client).text("/")
    browser = await signed_in(make_browser, author)
    position = live.position
    for path, stream in (
        ("/", f"/events?since={position}&amp;home=1"),
        (f"/posts/{post_id}", f"/events?since={position}&amp;thread={post_id}"),
        ("/notifications", f"/events?since={position}"),
    ):
        assert f'data-live-events="{stream}"' in await browser.text(path), path


def live_stream(following: set[int]) -> Stream:
    """A stream past its catching up, as a reader of user 1 who follows `following`."""
    stream = Stream(1, since=0, home=True, thread=None)
    stream.stale = False
    stream.following = frozenset(following)
    stream.take_pending()
    return stream


def _post_event(event_id: int, author_id: int) -> Event:
    return Event(event_id, "post", event_id, author_id, None, None, None, None, None)


def test_a_reader_who_falls_too_far_behind_is_told_to_reconnect_not_buffered_for():
    stream = live_stream(following={2})
    for event_id in range(1, BUFFER + 1):
        stream.offer(_post_event(event_id, 2), b"message")
    assert stream.ending is None
    assert len(stream.out) == BUFFER
    stream.offer(_post_event(BUFFER + 1, 2), b"one too many")
    assert stream.ending.startswith(b"retry: ")
    assert not stream.out  # dropped: the reconnect replays it from the reader's last id
    stream.offer(_post_event(BUFFER + 2, 2), b"after the end")
    assert not stream.out


def test_events_that_arrive_while_a_stream_catches_up_wait_in_order_and_are_bounded():
    stream = Stream(1, since=0, home=True, thread=None)
    stream.offer(_post_event(1, 2), b"first")
    stream.offer(_post_event(2, 3), b"not followed")
    stream.offer(_post_event(3, 2), b"second")
    assert not stream.out
    stream.stale = False
    stream.following = frozenset({2})
    stream.take_pending()
    assert list(stream.out) == [b"first", b"second"]
    assert not stream.catching_up
    waiting = Stream(1, since=0, home=True, thread=None)
    for event_id in range(1, BUFFER + 2):
        waiting.offer(_post_event(event_id, 2), b"waits")
    assert waiting.ending is not None


async def test_while_it_cannot_listen_the_hub_polls_the_events_table(
    settings, pools, db, make_browser
):
    """A hub whose listener never connects still delivers, by polling; as one whose listener
    connection is cut does while it reconnects."""
    live = Hub(pools.primary)
    application = create_app(settings, pools, instance_name="polling", live=live)
    stop = asyncio.Event()
    keeping_up = asyncio.create_task(live.keep_up(stop))
    try:
        async with application.test_app():
            await ready(live)
            reader, writer = await make_user(db, "reader"), await make_user(db, "writer")
            await follows(db, reader, writer)
            reading, writing = (
                Browser(application.test_client()),
                Browser(application.test_client()),
            )
            await reading.sign_in(reader)
            await writing.sign_in(writer)
            async with opened(reading) as home:
                polled = await post(writing, db, "found by polling")
                assert (await home.event(within=2 * hub_module.POLL_INTERVAL + 2)).json[
                    "post"
                ] == polled
    finally:
        stop.set()
        await keeping_up


async def test_a_lost_listener_connection_loses_no_event(live, db, make_browser):
    reader, writer = await make_user(db, "reader"), await make_user(db, "writer")
    await follows(db, reader, writer)
    await ready(live)
    await wait_until(lambda: _listening(live))
    writing = await signed_in(make_browser, writer)
    async with opened(await signed_in(make_browser, reader)) as home:
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'microblog web listener'"
        )
        written = [await post(writing, db, f"while reconnecting {n}") for n in range(3)]
        assert [(await home.event()).json["post"] for _ in written] == written


async def _listening(live: Hub) -> bool:
    return live._listening


async def test_the_streams_open_are_a_gauge_of_the_process(live, db, make_browser):
    reader = await make_user(db, "reader")
    await ready(live)
    reading, scraper = await signed_in(make_browser, reader), make_browser()

    async def streams_open() -> float:
        return value(await scrape(scraper.client), "microblog_live_streams")

    assert await streams_open() == 0
    async with opened(reading), opened(reading, "/events"):
        assert await streams_open() == 2
    await wait_until(lambda: _none_open(streams_open))


async def _none_open(streams_open) -> bool:
    return await streams_open() == 0
