"""Keyset paging helpers shared by every query that pages by id."""

BIGINT_MAX = 2**63 - 1


def below(before: int | None) -> int:
    """The exclusive upper bound for `id < $n`: no cursor means from the newest row."""
    return BIGINT_MAX if before is None else before
