"""Start-up checks of the run modes."""

from __future__ import annotations

import dataclasses
import logging

from microblog.jobs import processes
from microblog.runtime import warn_about_connection_budget


async def test_start_up_warns_when_pools_could_exhaust_the_server(settings, pools, caplog):
    async with processes.registered(pools.queue, role="web", name="a", interval=60):
        with caplog.at_level(logging.WARNING, logger="microblog.runtime"):
            await warn_about_connection_budget(settings, pools)
            assert "connection budget exceeded" not in caplog.text
            greedy = dataclasses.replace(settings, db_pool_size=1_000)
            await warn_about_connection_budget(greedy, pools)
    assert "connection budget exceeded" in caplog.text
