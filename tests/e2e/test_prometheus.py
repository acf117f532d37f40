"""docs/prometheus.yml and docs/alerts.yml are what Debian's Prometheus accepts, and a real
Prometheus scraping a three-instance cluster and a worker answers the seed's questions."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from microblog.jobs.builtin import ping
from microblog.jobs.queue import enqueue_many
from tests.e2e.conftest import ROOT, Launcher, free_port, wait_for
from tests.e2e.test_scale import Cluster, cluster  # noqa: F401 (the fixture)

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# A queue no process of the test takes jobs from: what is enqueued there stays pending.
HELD_QUEUE = "held"
HELD_JOBS = 7
REQUESTS = 45


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=ROOT / "docs", capture_output=True, text=True, check=False
    )


def test_the_scrape_config_passes_promtool_check_config():
    checked = _promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_the_alert_rules_pass_promtool_check_rules_and_cover_each_worry():
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", (ROOT / "docs/alerts.yml").read_text(), re.M))
    assert alerts >= {
        "MicroblogInstanceDown",
        "MicroblogHighErrorRatio",
        "MicroblogSlowRequests",
        "MicroblogJobsWaiting",
        "MicroblogJobsFailing",
        "MicroblogReplicaLagging",
        "MicroblogPoolWaiting",
    }


class Prometheus:
    def __init__(self, url: str, popen: subprocess.Popen) -> None:
        self.url = url
        self.popen = popen

    def query(self, promql: str) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


def scrape_config(web_ports: list[int], worker_port: int) -> str:
    """docs/prometheus.yml with the test's ports and a one-second scrape interval."""
    text = (ROOT / "docs/prometheus.yml").read_text()
    for default, port in zip((3001, 3002, 3003, 3100), [*web_ports, worker_port], strict=True):
        assert f"127.0.0.1:{default}" in text
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    text = re.sub(r"scrape_interval: \S+", "scrape_interval: 1s", text)
    text = re.sub(r"scrape_timeout: \S+", "scrape_timeout: 1s", text)
    return re.sub(r"evaluation_interval: \S+", "evaluation_interval: 1s", text)


@pytest.fixture
def prometheus(tmp_path: Path, cluster: Cluster, launcher: Launcher) -> Iterator[Prometheus]:  # noqa: F811
    worker_port = free_port()
    worker = launcher.start(
        ["worker", "--queues", "default", "--metrics-port", str(worker_port)],
        cwd=cluster.cwd,
        env={**cluster.env, "INSTANCE_NAME": "worker-1"},
    )
    wait_for(
        lambda: _answers(f"http://127.0.0.1:{worker_port}/metrics"), "worker metrics", worker.popen
    )
    assert httpx.get(f"http://127.0.0.1:{worker_port}/public").status_code == 404
    folder = tmp_path / "prometheus"
    folder.mkdir()
    config = folder / "prometheus.yml"
    config.write_text(scrape_config([web.port for web in cluster.webs], worker_port))
    shutil.copy(ROOT / "docs/alerts.yml", folder / "alerts.yml")
    port = free_port()
    popen = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(folder / "log").open("wb"),
    )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}", popen)
    try:
        wait_for(lambda: _answers(f"{server.url}/-/ready"), "prometheus", popen, within=30)
        yield server
    finally:
        popen.terminate()
        popen.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def _hold_jobs(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await enqueue_many(conn, ping, [{}] * HELD_JOBS, queue=HELD_QUEUE)
    finally:
        await conn.close()


def _settles(prometheus: Prometheus, promql: str, expected: float) -> bool:
    return prometheus.scalar(promql) == expected


@pytest.mark.process
def test_prometheus_sees_every_instance_the_requests_made_and_the_jobs_waiting(
    prometheus: Prometheus,
    cluster: Cluster,  # noqa: F811
):
    wait_for(
        lambda: _settles(prometheus, 'count(up{job=~"microblog-.*"} == 1)', 4),
        "every target up",
        prometheus.popen,
        within=30,
    )
    asyncio.run(_hold_jobs(cluster.database_url))
    with httpx.Client(base_url=cluster.nginx.url) as client:
        instances = [client.get("/public").headers["X-Instance"] for _ in range(REQUESTS)]
    assert set(instances) == {"web-1", "web-2", "web-3"}

    # Counters summed over the instances: exact, where increase() over a window extrapolates.
    requests = 'sum(http_server_request_duration_seconds_count{route="/public"})'
    wait_for(lambda: _settles(prometheus, requests, REQUESTS), "requests", prometheus.popen, 30)
    # Per instance, named by INSTANCE_NAME through the info metric (docs/monitoring.md).
    per_instance = prometheus.query(
        'sum by (name) (http_server_request_duration_seconds_count{route="/public"}'
        " * on (instance) group_left (name) microblog_instance_info)"
    )
    by_name = {row["metric"]["name"]: float(row["value"][1]) for row in per_instance}
    assert by_name == {name: float(count) for name, count in Counter(instances).items()}

    # Every process reads the same queue, at most once every few seconds: each process comes
    # to the same number, and the cluster's is their max (docs/monitoring.md).
    held = f'microblog_jobs_queued{{queue="{HELD_QUEUE}", state="pending"}}'
    wait_for(
        lambda: _settles(prometheus, f"count({held} == {HELD_JOBS})", 4),
        "queue depth seen by every process",
        prometheus.popen,
        within=30,
    )
    assert prometheus.scalar(f"max({held})") == HELD_JOBS

    # The seed's other questions have answers too.
    assert prometheus.scalar('count(rate(process_cpu_seconds_total{job=~"microblog-.*"}[1m]))') == 4
    assert prometheus.scalar("sum(microblog_db_pool_connections)") > 0
