"""Open streams of /events as a browser holds them, over plain sockets (thousands of them cost
this process little): each records when every post event reached it."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

POST = re.compile(rb"(?:^|\n)id: (\d+)\nevent: post\n")
# Streams opened at once: the instances' listen backlog is finite.
OPENING_AT_ONCE = 50


@dataclass
class Stream:
    cookie: str
    received: list[tuple[int, float]] = field(default_factory=list)  # (event id, time.time())
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None  # why it ended before it was closed

    def ids(self) -> list[int]:
        return [event_id for event_id, _ in self.received]


async def hold(stream: Stream, port: int) -> None:
    """Read the home timeline's stream through the server on port until cancelled. HTTP/1.0, so
    that the body comes as sent, without chunks."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            "GET /events?home=1 HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Cookie: {stream.cookie}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            stream.failure = head.split(b"\r\n", 1)[0].decode()
            return
        buffer = b""
        while chunk := await reader.read(65536):
            now = time.time()
            *messages, buffer = (buffer + chunk).split(b"\n\n")
            if messages:
                stream.opened.set()  # the first is the retry hint, sent at once
            for message in messages:
                if found := POST.search(message):
                    stream.received.append((int(found.group(1)), now))
        stream.failure = "closed by the server"
    except (OSError, asyncio.IncompleteReadError) as error:
        stream.failure = f"{type(error).__name__}: {error}"
    finally:
        stream.opened.set()
        writer.close()


async def open_all(streams: list[Stream], port: int) -> list[asyncio.Task]:
    """Every stream open (or failed), a batch at a time; their tasks, to cancel when done."""
    tasks = []
    for start in range(0, len(streams), OPENING_AT_ONCE):
        batch = streams[start : start + OPENING_AT_ONCE]
        tasks += [asyncio.create_task(hold(stream, port)) for stream in batch]
        await asyncio.gather(*(stream.opened.wait() for stream in batch))
    failed = [s.failure for s in streams if s.failure]
    if failed:
        raise SystemExit(f"{len(failed)} streams did not open: {failed[0]}")
    return tasks


async def close_all(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
