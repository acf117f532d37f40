"""A web instance's resident memory along a long run of wrk on one page.

wrk runs with a Lua script that prints a line for every CHUNK answers each of its threads
receives; at every `every` answers the instance's VmRSS is read from /proc, and once `total`
have been answered wrk is stopped with SIGINT (which it answers with its report).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import wrk

CHUNK = 100
LUA = f"""
local answered = 0
function response(status, headers, body)
  answered = answered + 1
  if answered % {CHUNK} == 0 then
    io.write("answered {CHUNK}\\n")
    io.flush()
  end
end
"""
LONGEST_SECONDS = 3600  # wrk needs a duration; it is stopped long before this one


@dataclass(frozen=True)
class Sample:
    requests: int  # answered so far
    rss_mb: float


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status."""
    return parse_rss(Path(f"/proc/{pid}/status").read_text())


def parse_rss(status: str) -> float:
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError("no VmRSS line: not a live process's status")


def curve(
    url: str, connections: int, cookie: str | None, pid: int, total: int, every: int
) -> tuple[list[Sample], wrk.Report]:
    """The instance's RSS before the first request and at every `every` answers up to `total`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    words = wrk.command(url, connections, LONGEST_SECONDS, cookie)
    words[1:1] = ["-s", script.name]
    samples = [Sample(0, rss_mb(pid))]
    answered = 0
    popen = subprocess.Popen(words, stdout=subprocess.PIPE, text=True)
    try:
        for line in popen.stdout:
            if not line.startswith("answered "):
                continue
            answered += int(line.split()[1])
            if answered >= samples[-1].requests + every:
                samples.append(Sample(answered, rss_mb(pid)))
            if answered >= total:
                break
        popen.send_signal(signal.SIGINT)
        output = popen.stdout.read()
        if popen.wait(30) != 0:
            raise RuntimeError(f"wrk exited with {popen.returncode}:\n{output}")
    finally:
        if popen.poll() is None:
            popen.kill()
        os.unlink(script.name)
    return samples, wrk.parse(output)
