"""/metrics: what a process counts, in a text Prometheus's own parser reads, and who may see it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from microblog.app import create_app
from microblog.db.pools import waiting
from microblog.metrics.histogram import OTEL_DURATION_BUCKETS, Histogram
from tests.conftest import make_post, make_user, wait_until

DURATION = "http_server_request_duration_seconds"
TOKEN = "metrics-token-" + "t" * 32


def _from(peer: str) -> dict:
    """The TCP peer of a test request (the test client names none by itself)."""
    return {"scope_base": {"client": (peer, 50000)}}


async def scrape(client, peer: str = "127.0.0.1") -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label pairs: value}}, parsed by prometheus_client's parser."""
    response = await client.get("/metrics", **_from(peer))
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parsed(await response.get_data(as_text=True))


def parsed(text: str) -> dict[str, dict[tuple, float]]:
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            series = samples.setdefault(sample.name, {})
            assert labels not in series, f"{sample.name}{labels} appears twice"
            series[labels] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_never_by_the_path_sent(client, db):
    author = await make_user(db, "writer")
    for path in (f"/@{author.username}", "/@nobody_here", "/no/such/page", "/no/other/page"):
        await client.get(path)
    samples = await scrape(client)

    profile = "/@<username:username>"
    count = f"{DURATION}_count"
    assert value(samples, count, method="GET", route=profile, status_class="2xx") == 1
    assert value(samples, count, method="GET", route=profile, status_class="4xx") == 1
    assert value(samples, count, method="GET", route="unmatched", status_class="4xx") == 2
    routes = {dict(labels)["route"] for labels in samples[count]}
    assert not any("writer" in route or "no/such" in route for route in routes)
    assert value(samples, "http_server_responses_total", status="404") == 3
    assert value(samples, "http_server_responses_total", status="200") == 1


async def test_the_duration_histogram_has_the_opentelemetry_buckets(client):
    await client.get("/public")
    samples = await scrape(client)
    route = (("method", "GET"), ("route", "/public"), ("status_class", "2xx"))
    buckets = {}
    for labels, count in samples[f"{DURATION}_bucket"].items():
        le = dict(labels)["le"]
        if tuple(pair for pair in labels if pair[0] != "le") == route:
            buckets[le] = count
    assert [float(le) for le in buckets if le != "+Inf"] == list(OTEL_DURATION_BUCKETS)
    assert buckets["+Inf"] == 1
    assert list(buckets.values()) == sorted(buckets.values()), "buckets are cumulative"
    assert samples[f"{DURATION}_sum"][route] > 0


async def test_a_method_nobody_uses_is_one_label_value(client):
    await client.open("/public", method="BREW")
    samples = await scrape(client)
    methods = {dict(labels)["method"] for labels in samples[f"{DURATION}_count"]}
    assert methods == {"_OTHER"}


async def test_the_process_its_version_and_its_instance_name_are_there(client):
    samples = await scrape(client)
    (info,) = samples["microblog_instance_info"]
    assert dict(info)["name"] == "test-instance"
    assert dict(info)["role"] == "web"
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_start_time_seconds") > 0
    assert "process_cpu_seconds_total" in samples


async def test_a_request_waiting_for_a_connection_is_in_flight_and_waiting(
    client, app, pools, settings
):
    size = settings.db_pool_size
    held = [await pools.primary.acquire() for _ in range(size)]
    try:
        request = asyncio.create_task(client.get("/@anyone"))

        async def stuck() -> bool:
            samples = await scrape(client)
            return (
                value(samples, "http_server_active_requests") == 1
                and value(samples, "microblog_db_pool_waiting", pool="primary") == 1
            )

        await wait_until(stuck)
        samples = await scrape(client)
        assert value(samples, "microblog_db_pool_in_use", pool="primary") == size
        assert value(samples, "microblog_db_pool_max_connections", pool="primary") == size
    finally:
        for conn in held:
            await pools.primary.release(conn)
    await request
    samples = await scrape(client)
    assert value(samples, "http_server_active_requests") == 0
    assert value(samples, "microblog_db_pool_waiting", pool="primary") == 0


async def test_waiting_reads_asyncpgs_own_queue_of_acquisitions(pools):
    """What the pools' waiting count rests on: asyncpg's internals, checked here."""
    pool = pools.cache
    held = [await pool.acquire() for _ in range(pool.get_max_size())]

    async def one_more() -> asyncpg.Connection:
        return await pool.acquire()

    waiters = [asyncio.create_task(one_more()) for _ in range(2)]
    try:
        await wait_until(lambda: _async(waiting(pool) == 2))
    finally:
        for conn in held:
            await pool.release(conn)
        for conn in await asyncio.gather(*waiters):
            await pool.release(conn)
    assert waiting(pool) == 0


async def _async(result: bool) -> bool:
    return result


@pytest.mark.both_layouts
async def test_each_pool_is_counted_once_whichever_roles_share_it(client, layout):
    samples = await scrape(client)
    pools = {dict(labels)["pool"] for labels in samples["microblog_db_pool_connections"]}
    assert pools == ({"primary"} if layout == "one-database" else {"primary", "queue", "cache"})


async def test_cache_and_card_memory_hits_misses_and_sets(browser, db):
    author = await make_user(db)
    await make_post(db, author, "counted")
    await browser.get("/public")  # the page, and its card, drawn and stored
    await browser.get(f"/@{author.username}")  # the same card, from this process's memory
    samples = await scrape(browser.client)
    assert value(samples, "microblog_cache_misses_total", cache="cards") == 1
    assert value(samples, "microblog_cache_sets_total", cache="cards") == 1
    assert value(samples, "microblog_cache_hits_total", cache="cards") == 1
    assert value(samples, "microblog_cache_sets_total", cache="shared") >= 2  # card and page
    assert value(samples, "microblog_cache_misses_total", cache="shared") >= 1
    assert value(samples, "microblog_cache_errors_total", cache="shared") == 0


async def test_rate_limit_refusals_are_counted_by_rule(settings, pools):
    from microblog.ratelimit.rules import parse_rules

    limited = dataclasses.replace(
        settings, rate_limits=tuple(parse_rules("global_ip=2/1m").values())
    )
    app = create_app(limited, pools, instance_name="limited")
    async with app.test_app():
        client = app.test_client()
        statuses = [
            (await client.get("/public", **_from("198.51.100.7"))).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 429, 429]
        samples = await scrape(client)
    assert value(samples, "microblog_rate_limit_rejections_total", rule="global_ip") == 2
    assert value(samples, "http_server_responses_total", status="429") == 2


async def test_replica_lag_state_and_reads_come_from_the_monitor(
    settings, replica, database_url, db
):
    from microblog.db.pools import open_pools

    with_replica = dataclasses.replace(
        settings, replica_database_urls=(replica.url(database_url),), replica_max_lag=3.0
    )
    async with open_pools(with_replica, application_name="metrics test") as pools:
        app = create_app(with_replica, pools, instance_name="replicated")
        async with app.test_app(), pools.replicas.monitoring():
            client = app.test_client()

            async def probed() -> bool:
                samples = await scrape(client)
                return bool(samples.get("microblog_replica_lag_seconds"))

            await wait_until(probed)
            writer = await make_user(db, "writer")
            # A replica within the lag limit serves the read, and may not have the new row
            # yet: this test is about where reads are counted, not about lag.
            await replica.wait_replayed()
            assert (await client.get(f"/@{writer.username}")).status_code == 200
            samples = await scrape(client)
    (name,) = {dict(labels)["replica"] for labels in samples["microblog_replica_up"]}
    # The profile was read, and counted by where it went and why.
    reads = samples["microblog_db_reads_total"]
    assert sum(count for _, count in reads.items()) >= 1, reads
    assert {dict(labels)["target"] for labels in reads} <= {name, "primary"}
    assert value(samples, "microblog_replica_up", replica=name) == 1
    assert value(samples, "microblog_replica_lag_seconds", replica=name) >= 0
    assert ("replica", name) in dict.fromkeys(
        pair for labels in samples["microblog_replica_lag_bytes"] for pair in labels
    )
    assert value(samples, "microblog_replica_max_lag_seconds") == 3.0
    assert value(samples, "microblog_db_pool_max_connections", pool=f"replica {name}") == 4


# --- who may scrape --------------------------------------------------------------------


async def test_metrics_are_404_to_anyone_else_exactly_as_an_unknown_page(client):
    refused = await client.get("/metrics", **_from("203.0.113.9"))
    unknown = await client.get("/no-such-page", **_from("203.0.113.9"))
    assert refused.status_code == unknown.status_code == 404
    assert (await refused.get_data()) == (await unknown.get_data())


async def test_metrics_open_to_trusted_proxies_and_loopback(settings, pools):
    from microblog.parsers import networks

    trusting = dataclasses.replace(settings, trusted_proxies=networks("10.1.0.0/16"))
    app = create_app(trusting, pools, instance_name="trusting")
    async with app.test_app():
        client = app.test_client()
        for peer, status in (
            ("10.1.2.3", 200),
            ("127.0.0.1", 200),
            ("::1", 200),
            ("10.2.0.1", 404),
        ):
            response = await client.get("/metrics", **_from(peer))
            assert response.status_code == status, peer


async def test_a_forwarded_client_is_not_taken_for_the_proxy_in_front_of_it(client):
    """Through nginx (a trusted proxy) the client is the one nginx names: not loopback."""
    response = await client.get(
        "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, **_from("127.0.0.1")
    )
    assert response.status_code == 404


async def test_metrics_token_opens_metrics_from_anywhere_and_nothing_else_does(settings, pools):
    app = create_app(
        dataclasses.replace(settings, metrics_token=TOKEN), pools, instance_name="tokened"
    )
    async with app.test_app():
        client = app.test_client()
        outside = _from("203.0.113.9")
        for header, status in (
            (f"Bearer {TOKEN}", 200),
            (f"bearer {TOKEN}", 200),
            (f"Bearer {TOKEN[:-1]}", 404),
            (f"Bearer {TOKEN}x", 404),
            (f"Basic {TOKEN}", 404),
            (TOKEN, 404),
            ("", 404),
        ):
            response = await client.get("/metrics", headers={"Authorization": header}, **outside)
            assert response.status_code == status, header


async def test_scrapes_are_not_counted_among_the_requests(client):
    for _ in range(3):
        samples = await scrape(client)
    assert f"{DURATION}_count" not in samples
    assert value(samples, "http_server_active_requests") == 0


async def test_a_head_request_gets_the_headers_only(client):
    response = await client.head("/metrics", **_from("127.0.0.1"))
    assert response.status_code == 200
    assert await response.get_data() == b""


def test_a_histogram_text_escapes_label_values_and_counts_a_bound_in_its_bucket():
    histogram = Histogram("h", "help with \\ and\nnewline", ("route",), (0.1, 1.0))
    series = histogram.labels('a "quoted"\\path\n')
    for observed in (0.1, 0.5, 1.0, 3.0):
        series.observe(observed)
    [family] = text_string_to_metric_families(histogram.text())
    samples = {(s.name, s.labels.get("le")): (s.labels["route"], s.value) for s in family.samples}
    assert samples[("h_bucket", "0.1")] == ('a "quoted"\\path\n', 1)
    assert samples[("h_bucket", "1.0")][1] == 3
    assert samples[("h_bucket", "+Inf")][1] == 4
    assert samples[("h_count", None)][1] == 4
    assert samples[("h_sum", None)][1] == pytest.approx(4.6)
    assert family.documentation == "help with \\ and\nnewline"


async def test_every_metric_exported_is_in_docs_monitoring_md_and_every_one_there_exists(client):
    """The metrics table of docs/monitoring.md names exactly the families a scrape has."""
    response = await client.get("/metrics", **_from("127.0.0.1"))
    text = await response.get_data(as_text=True)
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    guide = (Path(__file__).parent.parent / "docs/monitoring.md").read_text()
    table = guide.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert documented == exported
