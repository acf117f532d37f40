"""One measurement: wrk's load on a page, and the CPU every part of the machine used meanwhile.

Each app instance's CPU comes from its own cgroup's counters when it has one (with how often
its quota throttled it), else from /proc; nginx's and PostgreSQL's from /proc, their exited
children included; wrk's from its rusage; and the machine's busy and idle time from
/proc/stat, so that what no part of the benchmark used shows as *others*.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import cgroups
import procstat
import wrk


@dataclass(frozen=True)
class Instance:
    """One app process and where its CPU is counted."""

    pid: int
    group: cgroups.Group | None = None

    def counters(self) -> cgroups.Counters:
        if self.group is not None:
            return self.group.counters()
        return cgroups.Counters(procstat.cpu_seconds(self.pid), 0, 0, 0.0)


@dataclass(frozen=True)
class Measurement:
    report: wrk.Report
    seconds: float
    budget: float | None  # cores each instance was allowed; None: as many as it could get
    instances: list[cgroups.Counters]  # each instance's, over the run
    cores: dict[str, float]  # cores used on average: wrk, nginx, app, postgres, others
    idle_share: float  # of the machine's CPU time, every core added up

    @property
    def app_ms_per_request(self) -> float:
        used = sum(counters.usage_seconds for counters in self.instances)
        return used * 1000 / max(self.report.requests, 1)

    def ms_per_request(self, part: str) -> float:
        """CPU one part of the machine (a key of `cores`) used per request answered."""
        return self.cores.get(part, 0.0) * self.seconds * 1000 / max(self.report.requests, 1)

    @property
    def budget_used(self) -> float | None:
        """The least any instance used of its budget: under 1, it was not held back all along."""
        if self.budget is None:
            return None
        return min(c.usage_seconds / (self.budget * self.seconds) for c in self.instances)

    @property
    def throttled_share(self) -> float:
        """Of the instances' periods with work to do, the share that ran out of quota."""
        periods = sum(c.periods for c in self.instances)
        return sum(c.throttled_periods for c in self.instances) / periods if periods else 0.0


def measure(
    url: str,
    connections: int,
    seconds: float,
    cookie: str | None,
    instances: list[Instance],
    servers: dict[str, int],
    budget: float | None,
) -> Measurement:
    """wrk on url after a warm-up; servers name the other processes to count (nginx,
    PostgreSQL) by their parent's pid."""
    wrk.warm_up(url, connections, cookie)
    own = os.getpid()
    started = time.monotonic()
    before = [instance.counters() for instance in instances]
    servers_before = {name: procstat.server_cpu_seconds(pid) for name, pid in servers.items()}
    own_before = procstat.cpu_seconds(own)
    busy_before, idle_before = procstat.machine_times()
    load = wrk.run(url, connections, seconds, cookie)
    busy, idle = procstat.machine_times()
    own_used = procstat.cpu_seconds(own) - own_before
    used = {
        name: procstat.server_cpu_seconds(pid) - servers_before[name]
        for name, pid in servers.items()
    }
    counters = [i.counters() - b for i, b in zip(instances, before, strict=True)]
    elapsed = time.monotonic() - started
    used["app"] = sum(c.usage_seconds for c in counters)
    used["wrk"] = load.cpu_seconds
    # Whatever the machine did besides the benchmark's parts and this script.
    used["others"] = max(busy - busy_before - sum(used.values()) - own_used, 0.0)
    return Measurement(
        report=load.report,
        seconds=elapsed,
        budget=budget,
        instances=counters,
        cores={name: value / elapsed for name, value in used.items()},
        idle_share=(idle - idle_before) / max(busy - busy_before + idle - idle_before, 1e-9),
    )
