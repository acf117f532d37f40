"""Load from wrk (Debian: apt-get install wrk): its command line, its run, and its report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

THREADS = 2
WARM_UP_SECONDS = 1
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Report:
    """What wrk printed."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int  # connect, read, write and timeout, added up

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + self.socket_errors


@dataclass(frozen=True)
class Load:
    """One run of wrk: its report, and how long it took and the CPU it used itself."""

    report: Report
    seconds: float
    cpu_seconds: float


def milliseconds(text: str) -> float:
    """One of wrk's durations ("812.00us", "1.50ms", "2.01s", "1.00m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a duration wrk prints: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> Report:
    """wrk's report with --latency."""

    def find(pattern: str) -> str:
        match = re.search(pattern, output)
        if match is None:
            raise ValueError(f"wrk's report has no {pattern!r}:\n{output}")
        return match.group(1)

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: (.+)", output)
    return Report(
        requests=int(find(r"(\d+) requests in ")),
        requests_per_second=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=milliseconds(find(r"\s50%\s+(\S+)")),
        p99_ms=milliseconds(find(r"\s99%\s+(\S+)")),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, re.findall(r"\d+", sockets.group(1)))) if sockets else 0,
    )


def command(url: str, connections: int, seconds: float, cookie: str | None) -> list[str]:
    words = [
        shutil.which("wrk") or "wrk",
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
    ]
    if cookie:
        words += ["-H", f"Cookie: {cookie}"]
    return [*words, url]


def warm_up(url: str, connections: int, cookie: str | None) -> None:
    """Open the connections, fill the caches and let the instances settle first."""
    subprocess.run(
        command(url, connections, WARM_UP_SECONDS, cookie), capture_output=True, check=True
    )


def run(url: str, connections: int, seconds: float, cookie: str | None) -> Load:
    started = time.monotonic()
    popen = subprocess.Popen(
        command(url, connections, seconds, cookie), stdout=subprocess.PIPE, text=True
    )
    output = popen.stdout.read()
    # wait4, not wait: the rusage of wrk alone is its share of the machine.
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if popen.returncode != 0:
        raise RuntimeError(f"wrk exited with {popen.returncode}:\n{output}")
    return Load(parse(output), elapsed, usage.ru_utime + usage.ru_stime)
