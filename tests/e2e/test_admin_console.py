"""The operators' console in Chromium, against a real `combined` process (web and worker):
an operator granted from the shell retries a failed job and watches it succeed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest
from playwright.sync_api import expect

from microblog.jobs.builtin import ping
from microblog.jobs.queue import enqueue
from tests.e2e.conftest import PASSWORD, Launcher, fetch_value
from tests.e2e.test_browser import launch_chromium

pytestmark = [pytest.mark.process, pytest.mark.browser]


async def _fail_a_job(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        job_id = await enqueue(conn, ping, {})
        await conn.execute(
            """
            UPDATE infra.jobs SET state = 'failed', attempts = 5, finished_at = now(),
                last_error = E'Traceback (most recent call last):\\nRuntimeError: it broke'
            WHERE id = $1
            """,
            job_id,
        )
    finally:
        await conn.close()
    return job_id


def test_an_operator_retries_a_failed_job_and_sees_it_succeed(
    fresh_database: str, launcher: Launcher, pyz, workdir: Path
):
    env = pyz.env(DATABASE_URL=fresh_database)
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    job_id = asyncio.run(_fail_a_job(fresh_database))
    site = launcher.web(cwd=workdir, env=env, mode="combined").url
    problems: list[str] = []
    with launch_chromium() as chromium:
        page = chromium.new_context().new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{site}/signup")
        page.fill("#username", "ops")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        page.wait_for_url(f"{site}/")

        assert page.goto(f"{site}/admin").status == 404  # signing up makes no operator
        assert problems == ["Failed to load resource: the server responded with a status of 404 ()"]
        problems.clear()
        granted = launcher.run(["admin", "grant", "ops"], cwd=workdir, env=env)
        assert (granted.returncode, granted.stdout.strip()) == (0, "ops is now an operator")
        assert page.goto(f"{site}/admin").status == 200

        row = page.locator(f"#job-{job_id}")
        expect(row).to_contain_text("RuntimeError: it broke")
        row.get_by_role("button", name=f"Retry job {job_id}").click()
        page.wait_for_url(re.compile(r"/admin#failed$"))
        expect(page.locator(f"#job-{job_id}")).to_have_count(0)
        expect(page.locator("#audit")).to_contain_text(f"job {job_id}")
        expect(page.locator('[data-state="failed"]')).to_have_text("0")
        # The worker runs it: its page (reloaded by htmx every few seconds) says so.
        page.goto(f"{site}/admin/jobs/{job_id}")
        expect(page.locator('[data-job="state"]')).to_have_text("finished")
    state = "SELECT state || ':' || attempts FROM infra.jobs WHERE id = $1"
    assert fetch_value(fresh_database, state, job_id) == "finished:1"
    assert not problems, problems
