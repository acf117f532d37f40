"""What `db --pgbouncer` writes for the PgBouncer it finds: prepared statements kept by a
PgBouncer that can (1.21 and later)."""

from __future__ import annotations

from pathlib import Path

import pytest

from microblog.db.embedded_pooler import (
    PREPARED_STATEMENTS,
    pgbouncer_config,
    version_prepares,
)
from microblog.db.standby import PostmasterFile


@pytest.mark.parametrize(
    ("answer", "prepares"),
    [
        ("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n", False),
        ("PgBouncer 1.21.0\n", True),
        ("PgBouncer 1.24.1\nlibevent 2.1.12-stable\nadns: c-ares 1.18.1\n", True),
        ("PgBouncer 2.0.0\n", True),
        ("pgbouncer: unknown option\n", False),
    ],
)
def test_prepared_statements_from_pgbouncer_1_21(answer, prepares):
    assert version_prepares(answer) is prepares


@pytest.mark.parametrize("prepares", [False, True])
def test_the_config_keeps_prepared_statements_only_where_pgbouncer_can(prepares, tmp_path: Path):
    primary = PostmasterFile(pid=1, port=5432, socket_dir=tmp_path, status="ready")
    config = pgbouncer_config(primary, tmp_path, tmp_path, prepares=prepares)
    assert "pool_mode = transaction\n" in config
    assert (f"max_prepared_statements = {PREPARED_STATEMENTS}\n" in config) is prepares
