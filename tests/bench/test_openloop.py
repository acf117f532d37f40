"""The open-loop generator: its schedule, its parsing of answers, and latency counted from when
each request was due, checked against a real server that stalls."""

from __future__ import annotations

import asyncio
import threading

import openloop
import pytest


def test_requests_are_due_at_a_constant_rate():
    assert list(openloop.schedule(4, 1.0)) == [0.0, 0.25, 0.5, 0.75]


def test_percentiles_are_latencies_some_request_had():
    values = [float(n) for n in range(100, 0, -1)]
    assert openloop.percentile(values, 0.99) == 99.0
    assert openloop.percentile(values, 0.5) == 50.0
    assert openloop.percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        openloop.percentile([], 0.5)


def test_a_response_head_gives_its_status_and_headers():
    status, headers = openloop.parse_head(b"HTTP/1.1 303 See Other\r\nContent-Length: 0\r\n\r\n")
    assert (status, headers) == (303, {"content-length": "0"})
    with pytest.raises(ValueError, match="not an HTTP response"):
        openloop.parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
    ],
)
async def test_a_whole_response_is_read_and_nothing_after_it(answer):
    reader = asyncio.StreamReader()
    reader.feed_data(answer + b"HTTP/1.1 404")
    assert await openloop.read_response(reader) == 200
    assert await reader.read(12) == b"HTTP/1.1 404"


class StallingServer:
    """Answers one request at a time; the first one takes `stall` seconds."""

    def __init__(self, stall: float) -> None:
        self.stall = stall
        self.port = 0
        self.ready = threading.Event()

    async def serve(self) -> None:
        lock = asyncio.Lock()
        first = True

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal first
            while await reader.readuntil(b"\r\n\r\n"):
                async with lock:
                    if first:
                        first = False
                        await asyncio.sleep(self.stall)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        async with server:
            await asyncio.sleep(5)


def test_a_stall_delays_every_request_due_during_it():
    """A closed loop would time only the stalled request; due times count all of them."""
    server = StallingServer(stall=0.3)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    assert server.ready.wait(5)
    result = openloop.offer("127.0.0.1", server.port, "/", rate=100, seconds=0.6, cookie=None)
    assert result.errors == 0
    assert len(result.latencies_ms) == 60
    # Requests due 0-300 ms in waited for the first; about 30 of them, each waiting longer
    # the earlier it was due.
    delayed = [ms for ms in result.latencies_ms if ms > 100]
    assert len(delayed) >= 15
    assert max(result.latencies_ms) >= 290
