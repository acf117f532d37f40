"""The processes table: every web, worker and combined process registers and heartbeats.

A process that stops heartbeating for HEARTBEAT_TIMEOUT (kill -9, a lost machine) is deleted
by the prune job, and the jobs it held go back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from microblog import __version__
from microblog.db.outage import DATABASE_OUTAGE

log = logging.getLogger(__name__)

# Roles of the processes that run jobs (web processes only enqueue them).
JOB_TAKING_ROLES = ("worker", "combined")
NO_JOB_TAKER = "no worker or combined process is running: pending jobs wait until one starts"
# How long processes that stopped are remembered (the /admin console lists them).
DEATHS_KEPT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ProcessRow:
    id: uuid.UUID
    role: str
    name: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    version: str


@dataclass(frozen=True)
class DeadProcess:
    role: str
    name: str
    hostname: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    how: str  # 'stopped' (deregistered on the way out) or 'stopped heartbeating'
    ended_at: datetime


# A process's row, moved to infra.process_deaths as it is deleted.
_BURY = """
    INSERT INTO infra.process_deaths
        (id, role, name, hostname, pid, version, started_at, heartbeat_at, how)
    SELECT id, role, name, hostname, pid, version, started_at, heartbeat_at, $2 FROM gone
    ON CONFLICT (id) DO NOTHING
"""


async def _register(pool: asyncpg.Pool, process_id: uuid.UUID, role: str, name: str) -> None:
    await pool.execute(
        """
        INSERT INTO infra.processes (id, role, name, hostname, pid, version)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
        """,
        process_id,
        role,
        name,
        socket.gethostname(),
        os.getpid(),
        __version__,
    )


async def _heartbeat(pool: asyncpg.Pool, process_id: uuid.UUID) -> bool:
    """Refresh our row; False if it is gone (we were taken for dead)."""
    found = await pool.fetchval(
        "UPDATE infra.processes SET heartbeat_at = now() WHERE id = $1 RETURNING true", process_id
    )
    return bool(found)


async def prune_dead(conn: asyncpg.Connection, timeout_seconds: float) -> int:
    rows = await conn.fetch(
        f"""
        WITH gone AS (
            DELETE FROM infra.processes
            WHERE heartbeat_at < now() - make_interval(secs => $1) RETURNING *
        ), buried AS ({_BURY} RETURNING 1), forgotten AS (
            DELETE FROM infra.process_deaths
            WHERE ended_at < now() - make_interval(secs => $3) RETURNING 1
        )
        SELECT name FROM gone
        """,
        timeout_seconds,
        "stopped heartbeating",
        DEATHS_KEPT_SECONDS,
    )
    for row in rows:
        log.warning("process stopped heartbeating; pruned", extra={"dead_process": row["name"]})
    return len(rows)


async def alive(conn: asyncpg.Connection, timeout_seconds: float) -> list[ProcessRow]:
    """The processes that have heartbeated within the timeout, by role and name."""
    rows = await conn.fetch(
        """
        SELECT id, role, name, hostname, pid, started_at, heartbeat_at, version
        FROM infra.processes WHERE heartbeat_at >= now() - make_interval(secs => $1)
        ORDER BY role, name
        """,
        timeout_seconds,
    )
    return [ProcessRow(**dict(row)) for row in rows]


async def recently_dead(conn: asyncpg.Connection, limit: int = 20) -> list[DeadProcess]:
    """The processes that stopped within DEATHS_KEPT_SECONDS, the latest first."""
    rows = await conn.fetch(
        """
        SELECT role, name, hostname, pid, version, started_at, heartbeat_at, how, ended_at
        FROM infra.process_deaths ORDER BY ended_at DESC LIMIT $1
        """,
        limit,
    )
    return [DeadProcess(**dict(row)) for row in rows]


async def job_takers(conn: asyncpg.Connection, timeout_seconds: float) -> list[ProcessRow]:
    """The live processes that run jobs; with none, pending jobs wait (NO_JOB_TAKER)."""
    return [p for p in await alive(conn, timeout_seconds) if p.role in JOB_TAKING_ROLES]


async def _keep_alive(
    pool: asyncpg.Pool, process_id: uuid.UUID, role: str, name: str, interval: float
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            if not await _heartbeat(pool, process_id):
                log.warning("this process was taken for dead; registering again")
                await _register(pool, process_id, role, name)
        except DATABASE_OUTAGE as error:
            log.warning("heartbeat failed", extra={"error": f"{type(error).__name__}: {error}"})


@asynccontextmanager
async def registered(
    pool: asyncpg.Pool, *, role: str, name: str, interval: float
) -> AsyncIterator[uuid.UUID]:
    """Register this process, heartbeat every `interval`, and deregister on the way out."""
    process_id = uuid.uuid4()
    await _register(pool, process_id, role, name)
    beating = asyncio.create_task(_keep_alive(pool, process_id, role, name, interval))
    try:
        yield process_id
    finally:
        beating.cancel()
        try:
            await pool.execute(
                f"""
                WITH gone AS (DELETE FROM infra.processes WHERE id = $1 RETURNING *)
                {_BURY}
                """,
                process_id,
                "stopped",
            )
        except DATABASE_OUTAGE as error:  # the prune job will remove the row once it goes stale
            log.warning("could not deregister", extra={"error": f"{type(error).__name__}: {error}"})
