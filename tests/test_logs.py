"""Log records stay one line each in both formats, whatever the values they carry."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from microblog.logs import JsonFormatter, TextFormatter

# C0 controls, DEL, C1 controls (\x9b is CSI on some terminals), and the Unicode line breaks
# and bidi controls that viewers honour.
NASTY = "\r\n\t\x1b[2J\x00\x7f\x9b\x85\u2028\u202e"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _plain_record(value: str) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "microblog", "msg": "m", "field": value})


def _record(**extra) -> logging.LogRecord:
    try:
        raise ValueError(f"bad input {NASTY}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        f"microblog.{NASTY}", logging.WARNING, __file__, 1, f"said {NASTY}", (), exc_info
    )
    record.__dict__.update(extra)
    return record


def test_text_lines_escape_control_characters_in_every_part():
    line = TextFormatter().format(_record(path=f"/x{NASTY}", **{f"key{NASTY}": NASTY}))
    assert line.splitlines() == [line], "one line"
    assert not CONTROL.search(line), repr(line)
    fields = re.findall(r'(?:^|[ =])("(?:[^"\\]|\\.)*")', line)
    decoded = [json.loads(field) for field in fields]
    assert f"microblog.{NASTY}" in decoded
    assert f"said {NASTY}" in decoded
    assert f"/x{NASTY}" in decoded
    assert f"key{NASTY}" in decoded
    assert any(value.startswith("Traceback") and NASTY in value for value in decoded)


@pytest.mark.parametrize("value", ["plain", "/@alice", "a-b_c.d:3000", "12.5"])
def test_text_values_without_anything_to_escape_stay_bare(value):
    line = TextFormatter().format(_plain_record(value))
    assert line.endswith(f" m field={value}")


@pytest.mark.parametrize("value", ["", "two words", 'quote"', "a=b", "back\\slash", "zoë"])
def test_text_values_that_would_be_ambiguous_are_quoted(value):
    line = TextFormatter().format(_plain_record(value))
    assert line.endswith(f" field={json.dumps(value)}")


def test_json_lines_escape_control_characters_too():
    line = JsonFormatter().format(_record(path=f"/x{NASTY}", **{f"key{NASTY}": NASTY}))
    assert line.splitlines() == [line], "one line"
    assert not CONTROL.search(line), repr(line)
    entry = json.loads(line)
    assert entry["logger"] == f"microblog.{NASTY}"
    assert entry["message"] == f"said {NASTY}"
    assert entry["path"] == f"/x{NASTY}"
    assert entry[f"key{NASTY}"] == NASTY
    assert NASTY in entry["traceback"]
