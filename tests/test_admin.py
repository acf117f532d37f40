"""The operators' console at /admin, through the app: who may see it, what it shows, and its
actions on the queue, each audited."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import re
import uuid

import pytest

from microblog import __version__
from microblog.admin.routes import SECTIONS
from microblog.cli import main
from microblog.cli.admin import grant, revoke
from microblog.jobs import processes
from microblog.jobs.builtin import ping, prune_finished
from microblog.jobs.queue import enqueue, enqueue_many
from tests.conftest import Browser, make_user
from tests.test_read_routing import instance

# What to put in each variable part of an /admin rule when walking the URL map.
SAMPLE_ARGUMENTS = {"job_id": "1", "name": "trim-cache"}


async def _grant(settings, username: str) -> int:
    """`admin grant USERNAME` as the command line runs it (in a thread: it runs its own loop)."""
    return await asyncio.to_thread(grant, settings, argparse.Namespace(username=username))


async def _revoke(settings, username: str) -> int:
    return await asyncio.to_thread(revoke, settings, argparse.Namespace(username=username))


@pytest.fixture
async def operator(db, settings, browser):
    user = await make_user(db, "operator")
    assert await _grant(settings, user.username) == 0
    await browser.sign_in(user)
    return user


def _admin_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every /admin rule of the app, variable parts filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_ARGUMENTS[m[1]], rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    # The page, one fragment per section, a job's page, five actions: a walk that finds fewer
    # missed some.
    assert len(found) >= 1 + len(SECTIONS) + 1 + 5, found
    return found


async def _failed_jobs(queue_db, count: int, kind=ping) -> list[int]:
    name = "sleep_ms" if kind is ping else "older_than"
    ids = await enqueue_many(queue_db, kind, [{name: n} for n in range(count)])
    await queue_db.execute(
        "UPDATE infra.jobs SET state = 'failed', attempts = 5, finished_at = now(), "
        "last_error = 'Traceback (most recent call last):\n  File \"x.py\"\nRuntimeError: boom' "
        "WHERE id = any($1)",
        ids,
    )
    return ids


async def _states(queue_db, ids: list[int]) -> list[str]:
    rows = await queue_db.fetch("SELECT state FROM infra.jobs WHERE id = any($1) ORDER BY id", ids)
    return [row["state"] for row in rows]


async def _audit(db) -> list[tuple[str, str, str]]:
    rows = await db.fetch("SELECT actor, action, details FROM admin_audit ORDER BY id")
    return [(row["actor"], row["action"], row["details"]) for row in rows]


async def test_the_first_account_is_not_an_operator(db, browser):
    first = await make_user(db, "first")
    await browser.sign_in(first)
    assert (await browser.get("/admin")).status_code == 404


async def test_granting_opens_the_console_and_revoking_closes_it_both_audited(
    db, settings, browser
):
    user = await make_user(db, "Ops_Person")
    await browser.sign_in(user)
    assert await _grant(settings, "ops_person") == 0  # usernames match regardless of case
    assert (await browser.get("/admin")).status_code == 200
    assert await _revoke(settings, "Ops_Person") == 0
    assert (await browser.get("/admin")).status_code == 404
    assert await _audit(db) == [
        ("command line", "grant operator", "Ops_Person"),
        ("command line", "revoke operator", "Ops_Person"),
    ]


async def test_granting_an_unknown_username_says_so_and_fails(db, settings, capsys):
    assert await _grant(settings, "nobody_here") == 1
    assert await _revoke(settings, "nobody_here") == 1
    assert "no account called 'nobody_here'" in capsys.readouterr().err
    assert await db.fetchval("SELECT count(*) FROM operators") == 0
    assert await _audit(db) == []


@pytest.mark.parametrize("action", ["grant", "revoke"])
async def test_the_admin_command_exits_non_zero_for_an_unknown_username(
    database_url, monkeypatch, tmp_path, capsys, action
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MICROBLOG_DATA_DIR", str(tmp_path))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # main() sets up logging for a process
    try:
        with pytest.raises(SystemExit) as exit:
            await asyncio.to_thread(main, ["admin", action, "ghost"])
    finally:
        root.handlers[:], root.level = handlers, level
    assert exit.value.code == 1
    assert capsys.readouterr().err.strip() == "microblog: there is no account called 'ghost'"


async def test_every_admin_route_is_not_found_for_anonymous_visitors_and_non_operators(
    app, db, make_browser
):
    anonymous, ordinary = make_browser(), make_browser()
    await ordinary.sign_in(await make_user(db, "ordinary"))
    for visitor in (anonymous, ordinary):
        for method, path in _admin_routes(app):
            if method == "GET":
                response = await visitor.get(path)
            else:  # with a valid CSRF token: refused as not found, not as a forgery
                response = await visitor.post(path, {"kind": ""})
            assert response.status_code == 404, (method, path, response.status_code)
            assert "admin" not in (await response.get_data(as_text=True)).lower()


async def test_every_admin_post_refuses_a_missing_csrf_token(app, db, queue_db, client, operator):
    [job_id] = await _failed_jobs(queue_db, 1)
    posts = [path for method, path in _admin_routes(app) if method == "POST"]
    assert posts
    for path in posts:
        response = await client.post(path.replace("/1/", f"/{job_id}/"), form={"kind": ""})
        assert response.status_code == 403, path
    assert await _states(queue_db, [job_id]) == ["failed"]
    assert await _audit(db) == [("command line", "grant operator", "operator")]


@pytest.mark.both_layouts
async def test_the_console_shows_every_section_each_refreshed_as_a_fragment(
    browser, operator, queue_db
):
    await _failed_jobs(queue_db, 1)
    page = await browser.text("/admin")
    for name in SECTIONS:
        assert f'hx-get="/admin/{name}" hx-trigger="every 5s"' in page
        fragment = await browser.text(f"/admin/{name}", headers={"HX-Request": "true"})
        assert "<html" not in fragment
        assert "<html" in await browser.text(f"/admin/{name}")  # without htmx: a page
    assert "RuntimeError: boom" in page
    assert "traceback" in page
    assert "microblog tests" in page  # the connections by application_name
    assert "max_connections" in page
    assert "prune-dead-processes" in page  # the recurring jobs


@pytest.mark.both_layouts
async def test_retrying_one_failed_job_puts_it_back_and_audits_it(browser, operator, db, queue_db):
    first, second = await _failed_jobs(queue_db, 2)
    response = await browser.post(f"/admin/jobs/{first}/retry", {"kind": ""})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin#failed"
    assert await _states(queue_db, [first, second]) == ["pending", "failed"]
    assert (await _audit(db))[-1] == ("operator", "retry job", f"job {first}")
    assert "retry job" in await browser.text("/admin/audit")


async def test_retrying_a_job_that_is_not_failed_says_so(browser, operator, db, queue_db):
    job_id = await enqueue(queue_db, ping, {})
    response = await browser.post(f"/admin/jobs/{job_id}/retry")
    assert response.status_code == 409
    assert f"Job {job_id} is not a failed job" in await response.get_data(as_text=True)
    assert len(await _audit(db)) == 1  # only the grant


async def test_discarding_one_failed_job_gives_up_on_it_and_audits_it(
    browser, operator, db, queue_db
):
    first, second = await _failed_jobs(queue_db, 2)
    response = await browser.post(f"/admin/jobs/{second}/discard")
    assert response.status_code == 303
    assert await _states(queue_db, [first, second]) == ["failed", "discarded"]
    assert (await _audit(db))[-1] == ("operator", "discard job", f"job {second}")


async def test_failed_jobs_filter_by_kind(browser, operator, queue_db):
    await _failed_jobs(queue_db, 1)
    [other] = await _failed_jobs(queue_db, 1, kind=prune_finished)
    page = await browser.text("/admin/failed?kind=jobs.prune_finished")
    assert re.findall(r'id="job-(\d+)"', page) == [str(other)]
    assert "jobs.ping (1)" in page  # the filter names the other kinds too


@pytest.mark.both_layouts
async def test_retrying_every_failed_job_of_a_kind_leaves_the_rest_failed(
    browser, operator, db, queue_db
):
    pings = await _failed_jobs(queue_db, 3)
    others = await _failed_jobs(queue_db, 2, kind=prune_finished)
    response = await browser.post("/admin/jobs/retry", {"kind": "jobs.ping"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin?kind=jobs.ping#failed"
    assert await _states(queue_db, pings) == ["pending"] * 3
    assert await _states(queue_db, others) == ["failed"] * 2
    assert (await _audit(db))[-1] == (
        "operator",
        "retry failed jobs",
        "3 failed jobs of kind jobs.ping",
    )


async def test_discarding_every_failed_job_without_a_filter(browser, operator, db, queue_db):
    jobs = await _failed_jobs(queue_db, 2) + await _failed_jobs(queue_db, 1, kind=prune_finished)
    assert (await browser.post("/admin/jobs/discard", {"kind": ""})).status_code == 303
    assert await _states(queue_db, jobs) == ["discarded"] * 3
    assert (await _audit(db))[-1] == (
        "operator",
        "discard failed jobs",
        "3 failed jobs of every kind",
    )


@pytest.mark.both_layouts
async def test_run_now_enqueues_the_recurring_job(browser, operator, db, queue_db):
    response = await browser.post("/admin/recurring/trim-cache/run")
    assert response.status_code == 303
    jobs = await queue_db.fetch("SELECT kind, state, args FROM infra.jobs")
    assert [(row["kind"], row["state"]) for row in jobs] == [("cache.trim", "pending")]
    assert (await _audit(db))[-1] == ("operator", "run recurring job now", "trim-cache")
    assert (await browser.post("/admin/recurring/no-such-task/run")).status_code == 404


async def test_processes_alive_and_recently_stopped_are_shown(browser, operator, queue_db):
    alive, dead = uuid.uuid4(), uuid.uuid4()
    await queue_db.execute(
        """
        INSERT INTO infra.processes (id, role, name, hostname, pid, version, heartbeat_at)
        VALUES ($1, 'worker', 'alive-worker', 'here', 1, '9.9', now()),
               ($2, 'web', 'dead-web', 'there', 2, '9.8', now() - interval '1 hour')
        """,
        alive,
        dead,
    )
    [job_id] = await _failed_jobs(queue_db, 1)
    await queue_db.execute(
        "UPDATE infra.jobs SET state = 'running', locked_by = $1 WHERE id = $2", alive, job_id
    )
    assert await processes.prune_dead(queue_db, 30) == 1
    page = await browser.text("/admin/processes")
    alive_row = re.search(r'<tr class="process">.*?alive-worker.*?</tr>', page, re.S)[0]
    assert "9.9" in alive_row
    assert "<td>1</td></tr>" in alive_row
    dead_row = re.search(r'<tr class="dead-process">.*?</tr>', page, re.S)[0]
    assert "dead-web" in dead_row
    assert "stopped heartbeating" in dead_row


async def test_a_job_page_shows_how_it_stands_and_unknown_jobs_are_not_found(
    browser, operator, queue_db
):
    [job_id] = await _failed_jobs(queue_db, 1)
    page = await browser.text(f"/admin/jobs/{job_id}")
    assert '<dd data-job="state">failed</dd>' in page
    assert f'hx-get="/admin/jobs/{job_id}" hx-trigger="every 5s"' in page
    await browser.post(f"/admin/jobs/{job_id}/retry")
    fragment = await browser.text(f"/admin/jobs/{job_id}", headers={"HX-Request": "true"})
    assert '<dd data-job="state">pending</dd>' in fragment
    missing = await browser.get(f"/admin/jobs/{job_id + 1000}")
    assert missing.status_code == 404
    assert f"There is no job {job_id + 1000}" in await missing.get_data(as_text=True)


async def test_a_process_that_stops_is_remembered_with_its_version(pools, queue_db):
    async with processes.registered(pools.queue, role="worker", name="leaving", interval=60):
        assert await processes.recently_dead(queue_db) == []
    [dead] = await processes.recently_dead(queue_db)
    assert (dead.name, dead.how, dead.version) == ("leaving", "stopped", __version__)
    assert await queue_db.fetchval("SELECT count(*) FROM infra.processes") == 0


async def test_a_kind_no_job_could_have_is_refused_with_a_message(browser, operator, queue_db):
    [job_id] = await _failed_jobs(queue_db, 1)
    for response in (
        await browser.get("/admin/failed?kind=" + "k" * 201),
        await browser.post("/admin/jobs/retry", {"kind": "k" * 201}),
    ):
        assert response.status_code == 422
        assert "not the name of a job kind" in await response.get_data(as_text=True)
    assert await _states(queue_db, [job_id]) == ["failed"]


async def test_replicas_are_shown_with_their_lag(settings, replica, database_url, db):
    with_replica = dataclasses.replace(settings, replica_database_urls=(replica.url(database_url),))
    user = await make_user(db, "watcher")
    assert await _grant(settings, user.username) == 0
    async with instance(with_replica, "a") as running:
        browser = Browser(running.app.test_client())
        await browser.sign_in(user)
        fragment = await browser.text("/admin/replicas", headers={"HX-Request": "true"})
    row = re.search(r'<tr class="replica">(.*?)</tr>', fragment, re.S)[1]
    assert running.replica.name in row
    assert "<td>yes</td>" in row
    assert re.search(r"<td>\d+\.\d\d s</td>", row), row  # the lag the monitor measured
