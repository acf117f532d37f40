"""What a web process counts of the requests it answers (recorded by web/observability.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from microblog.metrics.histogram import OTEL_DURATION_BUCKETS, Histogram

# Methods any client may send; anything else is one label value, as OpenTelemetry does, so a
# client inventing methods cannot make series without end.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "_OTHER"
# The route of a request that matched none: one label value for every unknown path.
UNMATCHED_ROUTE = "unmatched"
STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


class HttpMetrics(Collector):
    """Requests by method, route template and status class; in flight; responses by status;
    rate-limit refusals by rule."""

    def __init__(self) -> None:
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Time from the request's arrival at the app to its response, by route template.",
            ("method", "route", "status_class"),
            OTEL_DURATION_BUCKETS,
        )
        self.in_flight = 0
        self.responses: Counter[int] = Counter()
        self.rate_limited: Counter[str] = Counter()

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else OTHER_METHOD
        status_class = STATUS_CLASSES.get(status // 100, "other")
        self.duration.labels(method, route or UNMATCHED_ROUTE, status_class).observe(seconds)
        self.responses[status] += 1

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "http_server_active_requests", "Requests being answered now.", value=self.in_flight
        )
        responses = CounterMetricFamily(
            "http_server_responses", "Responses sent, by status code.", labels=["status"]
        )
        for status, count in sorted(self.responses.items()):
            responses.add_metric([str(status)], count)
        yield responses
        refused = CounterMetricFamily(
            "microblog_rate_limit_rejections",
            "Requests refused with 429, by the rate-limit rule they went over.",
            labels=["rule"],
        )
        for rule, count in sorted(self.rate_limited.items()):
            refused.add_metric([rule], count)
        yield refused
