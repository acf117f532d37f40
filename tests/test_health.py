"""/up, and what visitors see while PostgreSQL is down and after it is back."""

from __future__ import annotations

import asyncio

import pgserver
import pytest

from microblog.app import create_app
from microblog.config import Settings
from microblog.db.embedded import DATABASE_NAME, create_database_if_missing
from microblog.db.migrate import ALL, apply_migrations
from microblog.db.pools import open_pools
from tests.conftest import HTMX, TEST_SECRET, app_state


async def test_up_names_the_instance_when_the_database_answers(browser):
    response = await browser.get("/up")
    assert response.status_code == 200
    assert (await response.get_data(as_text=True)).strip() == "ok test-instance"
    assert response.headers["Cache-Control"] == "no-store"


async def test_up_is_503_while_draining(app, browser):
    app_state(app).draining.set()
    response = await browser.get("/up")
    assert response.status_code == 503
    assert "draining" in await response.get_data(as_text=True)


@pytest.fixture
def own_server(tmp_path):
    """A PostgreSQL server of this test's own, so the test can stop and restart it."""
    pgdata = tmp_path / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    handle = {"server": server, "pgdata": pgdata}
    yield handle
    handle["server"].cleanup()


async def test_database_outage_gives_503_and_the_instance_recovers(own_server, tmp_path):
    url = own_server["server"].get_uri(DATABASE_NAME)
    await create_database_if_missing(url, DATABASE_NAME)
    settings = Settings(database_url=url, secret_key_base=TEST_SECRET, data_dir=tmp_path)
    async with open_pools(settings, application_name="outage test") as pools:
        async with pools.primary.acquire() as conn:
            await apply_migrations(conn, ALL)
        app = create_app(settings, pools, instance_name="outage")
        async with app.test_app():
            client = app.test_client()
            assert (await client.get("/public")).status_code == 200

            await asyncio.to_thread(own_server["server"].cleanup)  # PostgreSQL stops
            down = await client.get("/public")
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "5"
            assert "Temporarily unavailable" in await down.get_data(as_text=True)
            assert (await client.get("/up")).status_code == 503
            htmx = await client.get("/public", headers=HTMX)
            assert htmx.status_code == 503
            assert htmx.headers["HX-Retarget"] == "#messages"

            own_server["server"] = await asyncio.to_thread(
                pgserver.get_server, own_server["pgdata"], cleanup_mode="stop"
            )  # PostgreSQL is back: the same app serves again without a restart
            assert (await client.get("/up")).status_code == 200
            assert (await client.get("/public")).status_code == 200
