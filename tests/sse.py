"""Server-sent events as a browser's EventSource reads them, for the tests of /events."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One block of a stream, up to its blank line: an event, or a comment, a retry hint or
    an id on their own."""

    id: int | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comment: str | None = None

    @property
    def json(self) -> dict:
        return json.loads(self.data or "null")


def parse(block: str) -> Message:
    fields: dict = {}
    for line in block.split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            fields["comment"] = value
        elif name in ("id", "retry"):
            fields[name] = int(value)
        elif name in ("event", "data"):
            fields[name] = value
    return Message(**fields)


class Parser:
    """Bytes in as they come, whole messages out."""

    def __init__(self) -> None:
        self._buffer = ""
        self.fed = False

    def feed(self, data: bytes) -> list[Message]:
        self.fed = True
        self._buffer += data.decode()
        *blocks, self._buffer = self._buffer.split("\n\n")
        return [parse(block) for block in blocks if block]
