"""A process's memory of what it used lately: bounded, and keeping what is in use."""

from __future__ import annotations

from microblog.cache.recent import Recent


def test_what_was_kept_is_found_until_forgotten():
    recent: Recent[str, int] = Recent(10)
    recent["a"] = 1
    recent.update({"b": 2, "c": 3})
    assert (recent.get("a"), recent.get("b"), recent.get("c"), recent.get("d")) == (1, 2, 3, None)
    assert recent.pop("b") == 2
    assert recent.get("b") is None
    assert recent.pop("b", 0) == 0
    recent.clear()
    assert len(recent) == 0
    assert recent.get("a") is None


def test_the_size_is_never_exceeded_by_more_than_one_value():
    sizes: Recent[int, str] = Recent(100, sizeof=len)
    for key in range(1000):
        sizes[key] = "x" * 7
        assert sum(len(value) for value in _values(sizes)) <= 100 + 7


def test_what_is_used_survives_what_is_not():
    recent: Recent[int, int] = Recent(10)
    recent[0] = 0
    for key in range(1, 100):
        recent[key] = key
        assert recent.get(0) == 0  # used between every two writes: never dropped
    assert recent.get(1) is None  # used once, long ago: dropped
    assert len(recent) <= 10


def test_a_value_set_again_replaces_the_old_and_is_counted_once():
    sizes: Recent[str, str] = Recent(20, sizeof=len)
    for _ in range(100):
        sizes["same"] = "y" * 5
    assert sizes.get("same") == "y" * 5
    assert len(sizes) == 1
    recent: Recent[str, int] = Recent(4)
    recent["a"] = 1
    recent["b"] = 2  # the newer generation is full: it becomes the older one
    recent["a"] = 3
    assert (recent.get("a"), len(recent)) == (3, 2)


def _values(recent: Recent) -> list:
    # White-box on purpose: the bound is on what the process holds, both generations.
    return [*recent._newer.values(), *recent._older.values()]
