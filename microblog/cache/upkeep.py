"""Keeping the cache within its bounds: expired entries go first, then the oldest ones."""

from __future__ import annotations

import asyncpg


async def trim(conn: asyncpg.Connection, max_entries: int, max_bytes: int) -> int:
    """Delete expired entries, then the oldest until both bounds hold; return how many went."""
    expired = await conn.fetchval(
        """
        WITH gone AS (DELETE FROM infra.cache_entries WHERE expires_at <= now() RETURNING 1)
        SELECT count(*) FROM gone
        """
    )
    oldest = await conn.fetchval(
        """
        WITH ranked AS (
            SELECT key_hash,
                   row_number() OVER newest_first AS position,
                   sum(byte_size) OVER newest_first AS bytes_so_far
            FROM infra.cache_entries
            WINDOW newest_first AS (ORDER BY created_at DESC, key_hash)
        ), gone AS (
            DELETE FROM infra.cache_entries c USING ranked r
            WHERE c.key_hash = r.key_hash AND (r.position > $1 OR r.bytes_so_far > $2)
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        max_entries,
        max_bytes,
    )
    return expired + oldest
