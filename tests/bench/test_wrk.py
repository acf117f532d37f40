"""Reading wrk's report: every figure the benchmarks use, every unit it prints, its errors."""

from __future__ import annotations

import pytest
import wrk

REPORT = """Running 5s test @ http://127.0.0.1:41234/
  2 threads and 24 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    62.10ms   20.31ms 412.00ms   81.22%
    Req/Sec   190.12     30.50   250.00     70.00%
  Latency Distribution
     50%   58.20ms
     75%   70.01ms
     90%   88.70ms
     99%    1.21s
  1903 requests in 5.01s, 40.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 3
Requests/sec:    379.84
Transfer/sec:      8.01MB
"""


def test_report_gives_rate_latencies_and_every_error():
    report = wrk.parse(REPORT)
    assert report == wrk.Report(
        requests=1903,
        requests_per_second=379.84,
        p50_ms=58.2,
        p99_ms=1210.0,
        non_2xx_3xx=3,
        socket_errors=7,
    )
    assert report.errors == 10


def test_a_clean_report_has_no_errors():
    clean = "\n".join(
        line for line in REPORT.splitlines() if not line.strip().startswith(("Socket", "Non-2xx"))
    )
    assert wrk.parse(clean).errors == 0


@pytest.mark.parametrize(
    ("text", "ms"), [("812.00us", 0.812), ("1.50ms", 1.5), ("2.01s", 2010.0), ("1.00m", 60000.0)]
)
def test_durations_in_every_unit_wrk_prints(text, ms):
    assert wrk.milliseconds(text) == pytest.approx(ms)


def test_a_report_without_figures_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="requests in"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")
    with pytest.raises(ValueError, match="not a duration"):
        wrk.milliseconds("1.5h")


def test_command_sends_the_cookie_and_never_more_threads_than_connections():
    words = wrk.command("http://127.0.0.1:1/", 1, 5, "session=abc")
    assert words[1:] == ["-t1", "-c1", "-d5s", "--latency", "-H", "Cookie: session=abc",
                         "http://127.0.0.1:1/"]  # fmt: skip
    assert "-H" not in wrk.command("http://127.0.0.1:1/", 8, 5, None)
