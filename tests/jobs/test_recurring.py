"""Recurring job slots: by interval or by cron expression, checked at declaration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from microblog.jobs.builtin import ping
from microblog.jobs.recurring import Recurring
from microblog.jobs.registry import JobArgumentsError

pytestmark = pytest.mark.through_pgbouncer

AT = datetime(2026, 11, 28, 12, 7, 30, tzinfo=UTC)


def test_interval_slots_are_aligned_and_consecutive():
    every_minute = Recurring("tick", ping, every=timedelta(minutes=1))
    assert every_minute.current_slot(AT) == datetime(2026, 11, 28, 12, 7, tzinfo=UTC)
    assert every_minute.next_slot(AT) == datetime(2026, 11, 28, 12, 8, tzinfo=UTC)


def test_cron_slots_follow_the_expression():
    five = Recurring("five", ping, cron="*/5 * * * *")
    assert five.current_slot(AT) == datetime(2026, 11, 28, 12, 5, tzinfo=UTC)
    assert five.next_slot(AT) == datetime(2026, 11, 28, 12, 10, tzinfo=UTC)
    boundary = datetime(2026, 11, 28, 12, 10, tzinfo=UTC)
    assert five.current_slot(boundary) == boundary  # a slot starts at its own instant


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "exactly one"),
        ({"every": timedelta(minutes=1), "cron": "* * * * *"}, "exactly one"),
        ({"every": timedelta(0)}, "positive"),
        ({"cron": "every tuesday"}, "not a cron expression"),
    ],
)
def test_a_bad_schedule_is_refused_at_declaration(options, problem):
    with pytest.raises(ValueError, match=problem):
        Recurring("bad", ping, **options)


def test_bad_arguments_are_refused_at_declaration():
    with pytest.raises(JobArgumentsError):
        Recurring("bad", ping, every=timedelta(minutes=1), args={"colour": "red"})
