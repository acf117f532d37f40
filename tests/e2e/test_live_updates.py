"""Live updates across real instances behind the repository's nginx.conf: a stream held on one
instance hears the writes made on another, a stream that loses its instance resumes on
another with nothing missed or repeated, open streams never hold up a rolling restart, and in
Chromium the home timeline's bar, the unread count and a thread's replies follow."""

from __future__ import annotations

import asyncio
import html
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Launcher, Visitor, WebProcess, free_port, sign_up
from tests.e2e.test_browser import (  # noqa: F401 - console, open_page: fixtures
    assert_no_page_load,
    console,
    launch_chromium,
    open_page,
    post_with_htmx,
    set_marker,
)
from tests.e2e.test_browser import sign_up as browser_sign_up
from tests.e2e.test_scale import Cluster, Nginx, cluster, start_nginx  # noqa: F401 - cluster
from tests.sse import Message, Parser

pytestmark = pytest.mark.process

SHUTDOWN_TIMEOUT = 10.0
RECONNECT_AFTER_ERROR = 0.5


@dataclass
class BrowserStream:
    """What a browser's EventSource does, over httpx: it reads the stream a page names
    (its /events address, with the position the page was rendered at) and, when the stream
    ends or breaks, reconnects after the retry the server asked for, sending the last id it
    had (Last-Event-ID)."""

    base: str
    cookies: httpx.Cookies
    path: str
    events: list[Message] = field(default_factory=list)
    # X-Instance of each stream, in turn, once it has sent its first message.
    instances: list[str] = field(default_factory=list)
    last_id: int | None = None
    retry_ms: int = 3000

    async def run(self, stop: asyncio.Event) -> None:
        timeout = httpx.Timeout(5.0, read=None)
        async with httpx.AsyncClient(
            base_url=self.base, cookies=self.cookies, timeout=timeout
        ) as c:
            while not stop.is_set():
                await self._read_one(c, stop)
                await _wait(stop, self.retry_ms / 1000)

    async def _read_one(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        try:
            async with client.stream("GET", self.path, headers=headers) as response:
                if response.status_code != 200:
                    await _wait(stop, RECONNECT_AFTER_ERROR)
                    return
                instance = response.headers.get("X-Instance", "?")
                reading = asyncio.create_task(self._messages(response, instance))
                ending = asyncio.create_task(stop.wait())
                await asyncio.wait([reading, ending], return_when=asyncio.FIRST_COMPLETED)
                reading.cancel()
                ending.cancel()
        except httpx.HTTPError:
            pass

    async def _messages(self, response: httpx.Response, instance: str) -> None:
        parser = Parser()
        async for chunk in response.aiter_raw():
            if not parser.fed:  # the first message: the stream is open
                self.instances.append(instance)
            for message in parser.feed(chunk):
                if message.retry is not None:
                    self.retry_ms = message.retry
                if message.id is not None:
                    self.last_id = message.id
                if message.event:
                    self.events.append(message)

    def posts(self) -> list[int]:
        return [m.json["post"] for m in self.events if m.event == "post"]

    def of(self, kind: str) -> list[dict]:
        return [m.json for m in self.events if m.event == kind]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


async def until(check, what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within}s")
        await asyncio.sleep(0.05)


async def post_ids_of(url: str, username: str) -> list[int]:
    """The ids of a user's posts, oldest first, as stored."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}') FROM posts p "
            "JOIN users u ON u.id = p.author_id WHERE u.username = $1",
            username,
        )
    finally:
        await conn.close()


def posted(visitor: Visitor, body: str) -> None:
    response = visitor.submit("/", "/posts", body=body)
    assert response.status_code == 303, response.text


@dataclass
class Site:
    instances: list[WebProcess]
    nginx: Nginx
    database_url: str


@pytest.fixture
def site(fresh_database: str, launcher: Launcher, pyz, workdir: Path) -> Iterator[Site]:
    """Two combined instances (web and jobs: notifications are made) behind nginx."""
    env = pyz.env(
        DATABASE_URL=fresh_database, RATE_LIMITS="off", SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT)
    )
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    instances = [
        launcher.web(cwd=workdir, env={**env, "INSTANCE_NAME": f"web-{n}"}, mode="combined")
        for n in (1, 2)
    ]
    front = workdir / "site"
    front.mkdir()
    nginx = start_nginx(front, [*(web.port for web in instances), free_port()])
    try:
        yield Site(instances, nginx, fresh_database)
    finally:
        nginx.stop()


def stream_of_page(base: str, visitor: Visitor, page: str = "/") -> BrowserStream:
    """The stream the page at `page` opens for `visitor`, through `base`."""
    named = re.search(r'data-live-events="([^"]+)"', visitor.page(page))
    assert named, f"{page} names no stream"
    return BrowserStream(base, visitor.http.cookies, html.unescape(named.group(1)))


def reader_and_writer(base: str) -> tuple[Visitor, Visitor]:
    reader, writer = Visitor(httpx.Client(base_url=base)), Visitor(httpx.Client(base_url=base))
    sign_up(reader, "reader")
    sign_up(writer, "writer")
    assert reader.submit("/@writer", "/@writer/follow").status_code == 303
    return reader, writer


def test_a_post_on_one_instance_reaches_a_stream_on_another_and_so_does_a_count(site: Site):
    first, second = site.instances
    reader, writer = reader_and_writer(first.url)
    posted(reader, "the reader's own post")
    (own_post,) = asyncio.run(post_ids_of(site.database_url, "reader"))
    direct = stream_of_page(second.url, reader)
    through_nginx = stream_of_page(site.nginx.url, reader)

    async def scenario() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in (direct, through_nginx)]
        try:
            await until(lambda: direct.instances and through_nginx.instances, "streams open")
            await asyncio.to_thread(posted, writer, "written on the first instance")
            (written,) = await post_ids_of(site.database_url, "writer")
            for stream in (direct, through_nginx):
                await until(lambda s=stream: s.posts() == [written], "the post, live")
            await asyncio.to_thread(writer.submit, f"/posts/{own_post}", f"/posts/{own_post}/like")
            for stream in (direct, through_nginx):
                # The like's count at once; the notification's, once a job has made it.
                await until(lambda s=stream: {"unread": 1} in s.of("unread"), "the unread count")
                assert {"post": own_post, "likes": 1, "replies": 0} in stream.of("counts")
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert direct.instances[0] == "web-2"


def test_a_stream_that_loses_its_instance_resumes_elsewhere_missing_nothing_twice(site: Site):
    reader, writer = reader_and_writer(site.nginx.url)
    stream = stream_of_page(site.nginx.url, reader)
    missed = 5

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(stream.run(stop))
        try:
            await asyncio.to_thread(posted, writer, "before")
            await until(lambda: len(stream.posts()) == 1, "the first post")
            holder = site.instances[int(stream.instances[0].removeprefix("web-")) - 1]
            await asyncio.to_thread(_kill, holder)
            for n in range(missed):
                await asyncio.to_thread(posted, writer, f"while it reconnects {n}")
            await until(lambda: len(stream.posts()) == missed + 1, "the missed posts", within=30)
            await asyncio.to_thread(posted, writer, "after")
            await until(lambda: len(stream.posts()) == missed + 2, "the next post")
        finally:
            stop.set()
            await task

    asyncio.run(scenario())
    # Each post once, in order.
    assert stream.posts() == asyncio.run(post_ids_of(site.database_url, "writer"))
    assert len(set(stream.instances)) == 2, stream.instances  # it moved to the other instance


def _kill(web: WebProcess) -> None:
    web.popen.send_signal(signal.SIGKILL)
    web.popen.wait(5)
    web.stopped = True  # killed on purpose: teardown expects no clean exit from it


STREAMS = 50
READERS = 5


def test_a_rolling_restart_with_fifty_open_streams_is_not_held_up_and_loses_nothing(
    cluster: Cluster,  # noqa: F811 - test_scale's fixture
    launcher: Launcher,
):
    with Visitor(httpx.Client(base_url=cluster.nginx.url)) as writer:
        sign_up(writer, "writer")
        readers = []
        for n in range(READERS):
            reader = Visitor(httpx.Client(base_url=cluster.nginx.url))
            sign_up(reader, f"reader{n}")
            assert reader.submit("/@writer", "/@writer/follow").status_code == 303
            readers.append(reader)
        streams = [stream_of_page(cluster.nginx.url, readers[n % READERS]) for n in range(STREAMS)]
        stops: list[float] = []

        def restart_each_instance() -> None:
            for index, web in enumerate(list(cluster.webs)):
                began = time.monotonic()
                assert web.stop(timeout=SHUTDOWN_TIMEOUT + 5) == 0, web.describe()
                stops.append(time.monotonic() - began)
                posted(writer, f"while web-{index + 1} restarts")
                env = {**cluster.env, "INSTANCE_NAME": f"web-{index + 1}"}
                cluster.webs[index] = launcher.web(cwd=cluster.cwd, env=env, port=web.port)
                cluster.nginx.wait_serving(env["INSTANCE_NAME"])

        async def scenario() -> None:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(s.run(stop)) for s in streams]
            try:
                await until(lambda: all(s.instances for s in streams), "every stream open")
                held = {s.instances[0] for s in streams}
                assert held == {"web-1", "web-2", "web-3"}, held
                await asyncio.to_thread(restart_each_instance)
                await asyncio.to_thread(posted, writer, "after the restart")
                expected = len(cluster.webs) + 1
                await until(
                    lambda: all(len(s.posts()) >= expected for s in streams),
                    "every post on every stream",
                    within=30,
                )
            finally:
                stop.set()
                await asyncio.gather(*tasks)

        asyncio.run(scenario())
        for reader in readers:
            reader.close()
    print(f"\nstops took {', '.join(f'{s:.1f}s' for s in stops)}")
    # With open streams hypercorn would wait out the whole timeout: they end at once instead.
    assert all(seconds < SHUTDOWN_TIMEOUT / 2 for seconds in stops), stops
    written = asyncio.run(post_ids_of(cluster.database_url, "writer"))
    for stream in streams:
        assert stream.posts() == written, "a stream missed or repeated a post"
        assert len(stream.instances) >= 2  # it was moved at least once, and came back


@pytest.fixture
def chromium(site: Site) -> Iterator[Browser]:
    """Chromium for one test, started after the site: the site's database is made and dropped
    with asyncio.run(), which Playwright's event loop forbids while the browser runs."""
    with launch_chromium() as browser:
        yield browser


@pytest.mark.browser
def test_in_chromium_new_posts_wait_in_a_bar_and_the_count_and_replies_follow_live(
    site: Site,
    open_page,  # noqa: F811 - test_browser's fixture
    console,  # noqa: F811 - fails the test on any console error
):
    first, second = site.instances
    page = open_page()
    browser_sign_up(page, site.nginx.url, "reader")
    post_with_htmx(page, "the reader's own post")
    own_post = int(page.locator("#timeline article.post").first.get_attribute("id").split("-")[1])
    writers = [Visitor(httpx.Client(base_url=web.url)) for web in (first, second)]
    sign_up(writers[0], "writer")
    writers[1].http.cookies = writers[0].http.cookies  # one session, honoured by both
    page.goto(f"{site.nginx.url}/@writer")
    page.get_by_role("button", name="Follow").click()
    expect(page.get_by_role("button", name="Unfollow")).to_be_visible()

    page.goto(f"{site.nginx.url}/")
    expect(page.locator("body[data-live-events]")).to_have_count(1)
    set_marker(page)
    timeline = page.locator("#timeline article.post")
    expect(timeline).to_have_count(1)
    bar = page.locator(".live-bar button")
    # Written on each instance: whichever holds the page's stream hears both.
    posted(writers[0], "first live post")
    expect(bar).to_have_text("Show 1 new post")
    posted(writers[1], "second live post")
    expect(bar).to_have_text("Show 2 new posts")
    expect(timeline).to_have_count(1)  # nothing moved before the reader asked
    bar.click()
    expect(timeline).to_have_count(3)
    expect(timeline.nth(0)).to_contain_text("second live post")
    expect(timeline.nth(1)).to_contain_text("first live post")
    expect(page.locator(".live-bar")).to_be_hidden()
    posted(writers[0], "third live post")
    expect(bar).to_have_text("Show 1 new post")
    page.keyboard.press(".")
    expect(timeline.nth(0)).to_contain_text("third live post")

    # A like from the other instance: its count on the card, then (once a job has made the
    # notification) the unread count in the navigation.
    assert writers[1].submit(f"/posts/{own_post}", f"/posts/{own_post}/like").status_code == 303
    expect(page.locator(f"#post-{own_post}-like .count")).to_have_text("1")
    expect(page.locator(".nav-links a[href='/notifications'] .badge")).to_have_text("1")
    assert_no_page_load(page)

    page.goto(f"{site.nginx.url}/posts/{own_post}")
    set_marker(page)
    reply = writers[0].submit(f"/posts/{own_post}", "/posts", body="a live reply")
    assert reply.status_code == 303, reply.text
    expect(page.locator("#replies article.post")).to_contain_text("a live reply")
    expect(page.locator(f"#post-{own_post}-replies .count")).to_have_text("1")
    assert_no_page_load(page)
    for writer in writers:
        writer.close()
