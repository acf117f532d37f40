"""Load at a constant offered rate, latency counted from when each request was due.

wrk is closed-loop: each connection sends its next request only when the last one answered,
so a server that stalls is sent less, and the stall shows in one request's latency instead of
in every request that should have been sent meanwhile (coordinated omission). Here request i
is due at start + i / rate whatever happened before it; it goes out on an idle keep-alive
connection (or waits for one, a wait that counts), and its latency is from its due time to the
last byte of its answer. A generator that falls behind its schedule therefore makes the
latencies worse, never better.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass

CONNECTIONS = 32  # more than are ever busy at once at the rates measured here
TIMEOUT = 10.0  # seconds: an answer later than this counts as an error


@dataclass(frozen=True)
class Result:
    offered_rate: float  # requests per second the schedule asked for
    seconds: float
    latencies_ms: list[float]  # of the requests answered with 2xx, from their due times
    errors: int  # non-2xx answers, broken connections and timeouts

    @property
    def answered_rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, share: float) -> float:
        return percentile(self.latencies_ms, share)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `share` of them at or
    below it (no interpolation, so p99 is a latency some request really had)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def schedule(rate: float, seconds: float) -> Iterator[float]:
    """When each request is due, in seconds from the start."""
    for number in range(math.floor(rate * seconds)):
        yield number / rate


def request_bytes(path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """The status and headers (names lower-cased) of a response's head."""
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {status_line!r}")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole response (Content-Length or chunked); its status."""
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # the empty trailer
    else:
        await reader.readexactly(int(headers.get("content-length", 0)))
    return status


async def _offer(
    host: str, port: int, request: bytes, rate: float, seconds: float
) -> tuple[list[float], int]:
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        reader, writer = await idle.get()
        try:
            writer.write(request)
            status = await asyncio.wait_for(read_response(reader), TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            writer.close()
            idle.put_nowait(await asyncio.open_connection(host, port))
            return
        idle.put_nowait((reader, writer))
        if 200 <= status < 300:
            latencies.append((loop.time() - due) * 1000)
        else:
            errors += 1

    start = loop.time()
    tasks = []
    for offset in schedule(rate, seconds):
        await asyncio.sleep(max(start + offset - loop.time(), 0))
        tasks.append(asyncio.create_task(one(start + offset)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    return latencies, errors


def offer(
    url_host: str, port: int, path: str, rate: float, seconds: float, cookie: str | None
) -> Result:
    """`rate` requests per second to http://url_host:port/path for `seconds`."""
    headers = {"Cookie": cookie} if cookie else {}
    request = request_bytes(path, f"{url_host}:{port}", headers)
    latencies, errors = asyncio.run(_offer(url_host, port, request, rate, seconds))
    return Result(rate, seconds, latencies, errors)
