"""Positions in the primary's write-ahead log, as PostgreSQL's pg_lsn: comparable, small.

A position is a 64-bit byte offset. PostgreSQL writes it as two hex halves, `16/B374D848`;
asyncpg hands it over as the integer. As an int it compares and subtracts (the difference is
bytes of WAL), and goes into a signed session cookie as a plain JSON number.
"""

from __future__ import annotations

import re

_TEXT = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
_LIMIT = 1 << 64
# PostgreSQL's defaults (wal_block_size, wal_segment_size) and the page headers' sizes on a
# 64-bit build: the first page of a segment has the long header, every other page the short one.
_WAL_PAGE = 8192
_WAL_SEGMENT = 16 * 1024 * 1024
_LONG_HEADER = 40
_SHORT_HEADER = 24


class Lsn(int):
    """A WAL position: an int between 0 and 2**64 - 1 that prints as PostgreSQL does."""

    __slots__ = ()

    def __new__(cls, value: int) -> Lsn:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"a WAL position is an int, got {type(value).__name__}")
        if not 0 <= value < _LIMIT:
            raise ValueError(f"a WAL position is 0 to 2**64 - 1, got {value}")
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> Lsn:
        """From PostgreSQL's text form, `16/B374D848`."""
        match = _TEXT.fullmatch(text.strip())
        if not match:
            raise ValueError(f"not a WAL position such as 16/B374D848: {text!r}")
        return cls(int(match[1], 16) << 32 | int(match[2], 16))

    def __str__(self) -> str:
        return f"{int(self) >> 32:X}/{int(self) & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"Lsn('{self}')"

    def as_replayed(self) -> Lsn:
        """This insert position as a replica reports it once it has replayed every record before.

        When the last record ends on a page boundary, pg_current_wal_insert_lsn() points past the
        next page's header, where the next record will start, but pg_last_wal_replay_lsn() stops at
        the boundary until that record is written: waiting for the insert position as it is would
        wait for a write that may never come.
        """
        in_page = self % _WAL_PAGE
        header = _LONG_HEADER if self % _WAL_SEGMENT == in_page else _SHORT_HEADER
        return Lsn(self - header) if in_page == header else self
