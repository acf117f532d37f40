"""Choosing a replica from what the monitor knows, WAL positions, and how lag is timed: pure."""

from __future__ import annotations

import json

import pytest

from microblog.db.lsn import Lsn
from microblog.db.replica_status import (
    STALE_AFTER,
    PrimaryPositions,
    Reason,
    ReplicaStatus,
    choose_replica,
)

NOW = 1_000_000.0


def replica(name: str = "r1:5432/app", **state) -> ReplicaStatus:
    state = {"up": True, "replay_lsn": Lsn(100), "lag_seconds": 0.0, "probed_at": NOW} | state
    return ReplicaStatus(name=name, **state)


def choose(statuses, required=None, *, max_lag=5.0, turn=0):
    return choose_replica(statuses, required=required, max_lag=max_lag, now=NOW, turn=turn)


# --- WAL positions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0/0", 0),
        ("0/3000060", 0x3000060),
        ("16/B374D848", 0x16B374D848),
        ("FFFFFFFF/FFFFFFFF", 2**64 - 1),
    ],
)
def test_a_position_reads_and_prints_as_postgresql_writes_it(text, value):
    assert Lsn.parse(text) == value
    assert str(Lsn(value)) == text
    assert repr(Lsn(value)) == f"Lsn('{text}')"


def test_positions_compare_and_subtract_to_bytes():
    assert Lsn.parse("1/0") > Lsn.parse("0/FFFFFFFF")
    assert Lsn.parse("1/10") - Lsn.parse("1/0") == 16


def test_a_position_fits_a_cookie_as_a_plain_number():
    position = Lsn.parse("16/B374D848")
    assert json.dumps({"lsn": position}) == '{"lsn": 97500059720}'
    assert Lsn(json.loads(json.dumps(position))) == position


@pytest.mark.parametrize(
    ("insert", "replayed"),
    [
        ("1/2000", "1/2000"),  # nothing can be at a page's start but its header: kept as it is
        ("1/2018", "1/2000"),  # just past a page's short header: the record before ends at 1/2000
        ("1/2020", "1/2020"),  # a record ends inside the page
        ("1/1000028", "1/1000000"),  # just past the long header of a segment's first page
        ("1/1000018", "1/1000018"),  # a segment's first page: 24 bytes are inside its header
        ("1/5018", "1/5018"),  # 4 KB into a page: not a boundary
        ("0/28", "0/0"),
    ],
)
def test_an_insert_position_just_past_a_page_header_is_replayed_at_the_page_start(insert, replayed):
    assert Lsn.parse(insert).as_replayed() == Lsn.parse(replayed)


@pytest.mark.parametrize("text", ["", "16", "16/", "G/1", "1/2/3", "123456789/0", " /1"])
def test_a_malformed_position_is_refused(text):
    with pytest.raises(ValueError, match="WAL position"):
        Lsn.parse(text)


@pytest.mark.parametrize("value", [-1, 2**64])
def test_a_position_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="2\\*\\*64"):
        Lsn(value)


def test_a_position_is_made_of_an_int_only():
    with pytest.raises(TypeError):
        Lsn("12")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Lsn(True)


# --- choosing -------------------------------------------------------------------------


def test_without_replicas_reads_go_to_the_primary():
    choice = choose([])
    assert (choice.reason, choice.replica, choice.target) == (
        Reason.NONE_CONFIGURED,
        None,
        "primary",
    )


def test_an_anonymous_read_goes_to_a_replica_that_is_up_and_current():
    choice = choose([replica()])
    assert (choice.reason, choice.replica, choice.target) == (
        Reason.REPLICA,
        "r1:5432/app",
        "r1:5432/app",
    )


def test_a_read_after_a_write_needs_a_replica_that_has_replayed_it():
    statuses = [replica(replay_lsn=Lsn(100))]
    assert choose(statuses, Lsn(100)).reason is Reason.REPLICA
    assert choose(statuses, Lsn(101)).reason is Reason.READ_YOUR_WRITES


def test_only_the_replicas_that_replayed_far_enough_take_a_read_after_a_write():
    statuses = [replica("behind", replay_lsn=Lsn(90)), replica("ahead", replay_lsn=Lsn(120))]
    assert {choose(statuses, Lsn(100), turn=turn).replica for turn in range(4)} == {"ahead"}


def test_a_replica_beyond_the_lag_limit_is_skipped():
    assert choose([replica(lag_seconds=5.0)], max_lag=5.0).reason is Reason.REPLICA
    assert choose([replica(lag_seconds=5.1)], max_lag=5.0).reason is Reason.LAGGING
    assert choose([replica(lag_seconds=None)]).reason is Reason.LAGGING, "unknown lag is not 0"


def test_a_replica_that_is_down_or_not_heard_of_lately_is_skipped():
    assert choose([replica(up=False, error="ConnectionRefusedError")]).reason is Reason.DOWN
    assert choose([replica(probed_at=None)]).reason is Reason.DOWN
    assert choose([replica(probed_at=NOW - STALE_AFTER - 0.1)]).reason is Reason.DOWN
    assert choose([replica(probed_at=NOW - STALE_AFTER + 0.1)]).reason is Reason.REPLICA


def test_reads_are_spread_over_every_replica_that_qualifies():
    statuses = [replica("a"), replica("down", up=False), replica("b"), replica("c")]
    picks = [choose(statuses, turn=turn).replica for turn in range(6)]
    assert picks == ["a", "b", "c", "a", "b", "c"]


@pytest.mark.parametrize(
    ("others", "reason"),
    [
        ([replica("d", up=False)], Reason.DOWN),
        ([replica("d", up=False), replica("l", lag_seconds=9.0)], Reason.LAGGING),
        (
            [replica("l", lag_seconds=9.0), replica("r", replay_lsn=Lsn(50))],
            Reason.READ_YOUR_WRITES,
        ),
    ],
)
def test_when_none_qualifies_the_reason_is_that_of_the_closest(others, reason):
    assert choose(others, Lsn(100)).reason is reason
    assert choose(others, Lsn(100)).replica is None


# --- timing the lag -------------------------------------------------------------------


def test_a_replica_at_the_primarys_position_has_no_lag_however_old_its_last_commit():
    positions = PrimaryPositions(keep=60)
    positions.record(Lsn(100), at=0.0)
    assert positions.lag(Lsn(100), 3600.0, since_last_replayed_commit=3600.0) == 0.0


def test_lag_counts_from_when_the_primary_was_first_seen_past_the_replica():
    positions = PrimaryPositions(keep=60)
    positions.record(Lsn(100), at=0.0)  # an hour without writes, then one
    positions.record(Lsn(100), at=3599.0)
    positions.record(Lsn(200), at=3600.0)
    positions.record(Lsn(300), at=3601.0)
    assert positions.lag(Lsn(100), 3600.5, since_last_replayed_commit=3600.0) == 0.5
    assert positions.lag(Lsn(150), 3602.0, since_last_replayed_commit=1.0) == 2.0
    assert positions.lag(Lsn(200), 3602.0, since_last_replayed_commit=1.0) == 1.0


def test_old_positions_are_forgotten_but_the_last_one_before_the_window_is_kept():
    positions = PrimaryPositions(keep=10)
    for second in range(100):
        positions.record(Lsn(second), at=float(second))
    assert positions.lag(Lsn(95), 100.0, since_last_replayed_commit=None) == 4.0
    assert len(positions._seen) <= 12
    positions.record(Lsn(1000), at=5000.0)  # idle for over an hour, then a write
    assert positions.lag(Lsn(99), 5000.2, since_last_replayed_commit=4900.0) == pytest.approx(0.2)


def test_when_the_monitor_has_not_seen_the_replica_fall_behind_its_last_commit_stands_in():
    positions = PrimaryPositions(keep=60)
    positions.record(Lsn(200), at=0.0)  # the first sample is already past the replica
    assert positions.lag(Lsn(100), 0.1, since_last_replayed_commit=7.5) == 7.5
    assert positions.lag(Lsn(100), 0.1, since_last_replayed_commit=-0.3) == 0.0, "clock skew"
    assert positions.lag(Lsn(100), 0.1, since_last_replayed_commit=None) is None
    assert PrimaryPositions(keep=60).lag(Lsn(100), 0.0, since_last_replayed_commit=0.0) is None
