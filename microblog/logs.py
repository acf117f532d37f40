"""Logging: one line per event, key=value text in development and JSON in production.

The request id (from nginx's X-Request-ID or generated) and the instance name are attached to
every record, so lines from many instances can be merged and followed.

Values come from visitors too (a request's path): in both formats every line is printable
ASCII, so no value can end a line, forge another or send a terminal escape. JSON escapes the
rest itself; text quotes and escapes, JSON-style, every part that is not a plain token.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD_ATTRIBUTES = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES}


class _ContextFilter(logging.Filter):
    def __init__(self, instance: str) -> None:
        super().__init__()
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance
        record.request_id = request_id.get()
        return True


# Printable ASCII but for the space, the quote, the equals sign and the backslash: a bare token
# that reads back as itself.
_PLAIN = re.compile(r"[!#-<>-\[\]-~]+")


def _quote(value: Any) -> str:
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    return json.dumps(text)  # ensure_ascii: controls, DEL and all non-ASCII become \uXXXX


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"{stamp}Z", record.levelname.lower(), record.name, record.getMessage()]
        fields = _extra_fields(record)
        if record.exc_info:
            fields["traceback"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = record.stack_info
        line = " ".join(_quote(part) for part in parts)
        return " ".join([line, *(f"{_quote(k)}={_quote(v)}" for k, v in fields.items())])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


def configure_logging(*, fmt: str, level: str, instance: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter(instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
