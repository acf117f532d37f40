"""The replica monitor against a real streaming replica of the tests' server.

Replay is paused with pg_wal_replay_pause(), the replica is killed with SIGKILL and started
again; the monitor must see each of these within a few of its probes, and choose accordingly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from microblog.db.lsn import Lsn
from microblog.db.pools import Pools, open_pools
from microblog.db.replica_status import Reason, ReplicaStatus
from microblog.db.replicas import Replicas
from tests.conftest import wait_until
from tests.servers import ReplicaServer, database_of, free_port

MAX_LAG = 0.5


@pytest.fixture
async def replica_pools(settings, replica: ReplicaServer, database_url) -> AsyncIterator[Pools]:
    watching = dataclasses.replace(
        settings, replica_database_urls=(replica.url(database_url),), replica_max_lag=MAX_LAG
    )
    async with open_pools(watching, application_name="replica tests") as pools:
        yield pools


@pytest.fixture
def replicas(replica_pools: Pools) -> Replicas:
    return replica_pools.replicas


def status(replicas: Replicas) -> ReplicaStatus:
    (only,) = replicas.statuses
    return only


async def write(db: asyncpg.Connection, replica: ReplicaServer) -> Lsn:
    """A committed write on the primary; the primary's position just after it."""
    await db.execute("CREATE TABLE IF NOT EXISTS scratch (n int)")
    await db.execute("INSERT INTO scratch VALUES (1)")
    return await replica.primary_position()


async def test_the_replay_position_follows_writes_on_the_primary(
    replicas, replica, db, database_url
):
    async with replicas.monitoring():
        await until(lambda: status(replicas).up)
        for _ in range(3):
            written = await write(db, replica)
            await until(lambda w=written: (status(replicas).replay_lsn or 0) >= w)
        await until(lambda: status(replicas).lag_bytes == 0)
        caught_up = status(replicas)
    assert caught_up.up
    assert caught_up.error is None
    assert caught_up.lag_seconds == 0.0
    assert caught_up.name == f"{replica.folder}:5432/{database_of(database_url)}"
    assert abs(caught_up.probed_at - time.time()) < 2
    assert replicas.choose(written).reason is Reason.REPLICA


async def test_a_primary_whose_wal_ends_on_a_page_boundary_is_caught_up_with(replica, db):
    # After a WAL switch the insert position is past the next segment's page header, where no
    # record ends: a replica that has replayed everything reports the segment's start.
    await write(db, replica)
    await db.execute("SELECT pg_switch_wal()")
    on_boundary = Lsn(await db.fetchval("SELECT pg_current_wal_insert_lsn()"))
    assert on_boundary.as_replayed() < on_boundary, "the switch left the position mid-page"
    replayed = await replica.wait_replayed(within=5.0)
    assert replayed >= on_boundary.as_replayed()


async def test_paused_replay_is_lag_only_while_the_primary_has_newer_wal(replicas, replica, db):
    await write(db, replica)
    await replica.wait_replayed()
    await asyncio.sleep(1.0)  # the primary stays idle for a second: its last commit ages
    await replica.pause_replay()
    for _ in range(5):  # background WAL (a checkpoint, a standby snapshot) may come in between
        await replicas.probe()
        idle = status(replicas)
        if idle.lag_bytes == 0:
            break
        await replica.resume_replay()
        await replica.wait_replayed()
        await replica.pause_replay()
    assert idle.lag_bytes == 0, "the primary never stayed idle for one probe"
    assert idle.lag_seconds == 0.0, "an idle primary counted as lag"
    assert replicas.choose(None).reason is Reason.REPLICA

    written = await write(db, replica)
    await replicas.probe()
    behind = status(replicas)
    assert behind.replay_lsn < written
    assert behind.lag_bytes >= written - behind.replay_lsn > 0
    assert behind.lag_seconds < MAX_LAG
    assert replicas.choose(None).reason is Reason.REPLICA, "a fresh write is not lag yet"
    await asyncio.sleep(MAX_LAG)  # how long it stays behind is what is being measured
    await replicas.probe()
    assert status(replicas).lag_seconds > MAX_LAG
    assert replicas.choose(None).reason is Reason.LAGGING

    await replica.resume_replay()
    await replica.wait_replayed(written)
    await replicas.probe()
    assert status(replicas).lag_seconds == 0.0
    assert replicas.choose(None).reason is Reason.REPLICA


async def test_reads_after_a_write_wait_for_the_replica_to_replay_it(replicas, replica, db):
    await replicas.probe()  # seen caught up: from here on the monitor times any lag itself
    await replica.pause_replay()
    written = await write(db, replica)
    await replicas.probe()
    replayed = status(replicas).replay_lsn
    assert replicas.choose(written).reason is Reason.READ_YOUR_WRITES
    assert replicas.choose(replayed).reason is Reason.REPLICA
    assert replicas.choose(None).target == status(replicas).name

    await replica.resume_replay()
    await replica.wait_replayed(written)
    await replicas.probe()
    assert replicas.choose(written).reason is Reason.REPLICA


async def test_a_killed_replica_is_down_then_back_by_itself(replicas, replica, db):
    async with replicas.monitoring():
        await until(lambda: status(replicas).up)
        await replica.kill()
        await until(lambda: not status(replicas).up)
        down = status(replicas)
        assert down.error, "no reason given for being down"
        assert replicas.choose(None).reason is Reason.DOWN
        await asyncio.to_thread(replica.start)
        await until(lambda: status(replicas).up, within=15)
        written = await write(db, replica)
        await until(lambda: replicas.choose(written).reason is Reason.REPLICA)
    assert status(replicas).error is None


async def test_a_primary_named_as_a_replica_is_down_as_no_standby(settings, database_url):
    # The same server by another spelling of its URL: a promoted replica looks like this.
    url = database_url + ("&" if "?" in database_url else "?") + "application_name=not-a-replica"
    watching = dataclasses.replace(settings, replica_database_urls=(url,))
    async with open_pools(watching, application_name="replica tests") as pools:
        await pools.replicas.probe()
        (found,) = pools.replicas.statuses
    assert not found.up
    assert "not a standby" in found.error
    assert pools.replicas.choose(None).reason is Reason.DOWN


async def until(holds: Callable[[], bool], within: float = 10.0) -> None:
    async def check() -> bool:
        return holds()

    await wait_until(check, within)


async def test_a_replica_that_is_down_at_start_up_does_not_stop_the_process(settings):
    nowhere = f"postgresql://microblog:secret@127.0.0.1:{free_port()}/app"
    watching = dataclasses.replace(settings, replica_database_urls=(nowhere,))
    async with open_pools(watching, application_name="replica tests") as pools:
        assert await pools.primary.fetchval("SELECT 1") == 1
        await pools.replicas.probe()
        (found,) = pools.replicas.statuses
    assert not found.up
    assert "refused" in found.error.lower()
    assert "secret" not in found.name
