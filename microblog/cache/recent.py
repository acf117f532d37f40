"""What one process used lately, kept in its memory up to a size: two generations of dicts.

What is found is kept in the newer generation; once that holds half the size allowed, it
becomes the older one and the oldest is dropped. What was used since the last turn survives
it, so this keeps what is used often as an LRU would, and a hit is one dict lookup. A page
looks up twenty post cards, and an LRU's bookkeeping (cachetools', a move to the end of an
ordered dict through several calls in Python for every hit) cost the home page a twentieth of
its CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


def _one(_value: object) -> int:
    return 1


class Recent(Generic[Key, Value]):
    """At most `size` of what was used lately, each counted by `sizeof` (1 by default)."""

    def __init__(self, size: int, sizeof: Callable[[Value], int] = _one) -> None:
        self._turn_at = max(size // 2, 1)
        self._sizeof = sizeof
        self._newer: dict[Key, Value] = {}
        self._older: dict[Key, Value] = {}
        self._newer_size = 0

    def get(self, key: Key) -> Value | None:
        value = self._newer.get(key)
        if value is None:
            value = self._older.pop(key, None)
            if value is not None:
                self._keep(key, value)
        return value

    def __setitem__(self, key: Key, value: Value) -> None:
        self.pop(key)
        self._keep(key, value)

    def update(self, values: Mapping[Key, Value]) -> None:
        for key, value in values.items():
            self[key] = value

    def pop(self, key: Key, default: Value | None = None) -> Value | None:
        value = self._older.pop(key, None)
        if key in self._newer:
            value = self._newer.pop(key)
            self._newer_size -= self._sizeof(value)
        return default if value is None else value

    def clear(self) -> None:
        self._newer, self._older, self._newer_size = {}, {}, 0

    def __len__(self) -> int:
        return len(self._newer) + len(self._older)

    def _keep(self, key: Key, value: Value) -> None:
        self._newer[key] = value
        self._newer_size += self._sizeof(value)
        if self._newer_size >= self._turn_at:
            self._older, self._newer, self._newer_size = self._newer, {}, 0
