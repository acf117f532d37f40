"""SIGTERM and SIGINT, from the first moment of the process to its last.

A process may be told to stop while it is still starting (a rolling restart that moves on
quickly, a supervisor shutting everything down). The signal is noted from the start of main()
and honoured as soon as the event loop is ready, so even then the process stops cleanly and
exits 0 instead of dying mid-start-up.
"""

from __future__ import annotations

import asyncio
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: list[int] = []


def _note(signum: int, _frame: object) -> None:
    _received.append(signum)


def catch_early() -> None:
    """Remember stop signals until an event loop takes them over (call first in main)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _note)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, already set if one arrived during start-up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    if _received:
        stop.set()
    return stop
