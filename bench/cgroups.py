"""CPU budgets for benchmarked processes: each in its own cgroup with a CPU quota, and the
group's own counters of what it used and how often it was throttled.

A group with a budget of 0.3 cores may run for 0.3 of every enforcement period, and is then
throttled until the next one begins. The cgroup v1 `cpu` controller (`cpu.cfs_quota_us`,
`cpu.cfs_period_us`) and cgroup v2 (`cpu.max`) do the same; both count periods, throttled
periods and throttled time in `cpu.stat`. CPU used is counted by v2's `cpu.stat` and by v1's
`cpuacct` controller where it is mounted (beside `cpu` or apart from it), else from /proc.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import procstat

MOUNTS = Path("/proc/mounts")
MIN_QUOTA_US = 1_000  # the kernel refuses less
MAX_PERIOD_US = 1_000_000


class Unavailable(Exception):
    """No CPU budgets on this machine; the message says why."""


@dataclass(frozen=True)
class Counters:
    """A group's counters, or their difference over a run."""

    usage_seconds: float  # CPU time its processes used
    periods: int  # enforcement periods in which it had work to do
    throttled_periods: int  # of those, the ones in which it ran out of its quota
    throttled_seconds: float  # time its processes could have run but were held back

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.usage_seconds - other.usage_seconds,
            self.periods - other.periods,
            self.throttled_periods - other.throttled_periods,
            self.throttled_seconds - other.throttled_seconds,
        )

    @property
    def throttled_share(self) -> float:
        return self.throttled_periods / self.periods if self.periods else 0.0


def parse_cpu_stat(text: str) -> dict[str, int]:
    """`cpu.stat` (either version) as {name: value}."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            fields[name] = int(value)
    return fields


def counters_from(cpu_stat: str, version: int, usage_seconds: float | None) -> Counters:
    """The counters in one version's `cpu.stat`; v1's usage comes from elsewhere."""
    stat = parse_cpu_stat(cpu_stat)
    if version == 2:
        return Counters(
            stat["usage_usec"] / 1e6,
            stat.get("nr_periods", 0),
            stat.get("nr_throttled", 0),
            stat.get("throttled_usec", 0) / 1e6,
        )
    if usage_seconds is None:
        raise ValueError("cgroup v1 counts CPU used in cpuacct, not in cpu.stat")
    return Counters(
        usage_seconds, stat["nr_periods"], stat["nr_throttled"], stat["throttled_time"] / 1e9
    )


def quota_settings(version: int, cores: float | None, period_us: int) -> dict[str, str]:
    """The files to write, in order, to give a group `cores` of CPU (None: no limit)."""
    if not MIN_QUOTA_US <= period_us <= MAX_PERIOD_US:
        raise ValueError(f"a period of {period_us} µs is outside 1 ms to 1 s")
    quota = None if cores is None else round(cores * period_us)
    if quota is not None and quota < MIN_QUOTA_US:
        raise ValueError(
            f"{cores} cores of a {period_us} µs period is a quota of {quota} µs; "
            f"the kernel needs at least {MIN_QUOTA_US} µs: choose a longer period"
        )
    if version == 2:
        return {"cpu.max": f"{'max' if quota is None else quota} {period_us}"}
    return {"cpu.cfs_period_us": str(period_us), "cpu.cfs_quota_us": str(quota or -1)}


@dataclass(frozen=True)
class Hierarchy:
    """Where this machine's groups with a CPU controller are made."""

    version: int
    cpu: Path  # the mount point groups with quotas go under
    cpuacct: Path | None = None  # v1: where usage is counted, when mounted apart from cpu

    @property
    def counts_usage_with_cpu(self) -> bool:
        return self.version == 2 or self.cpuacct == self.cpu


def find_hierarchy(mounts: str) -> Hierarchy:
    """The CPU controller's hierarchy among /proc/mounts' lines, v1 first: where a machine
    mounts both, its cpu controller is bound to v1 and v2 has none."""
    cpu = cpuacct = unified = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point, kind, options = Path(fields[1]), fields[2], fields[3].split(",")
        if kind == "cgroup" and "cpu" in options:
            cpu = point
        if kind == "cgroup" and "cpuacct" in options:
            cpuacct = point
        if kind == "cgroup2":
            unified = point
    if cpu is not None:
        return Hierarchy(1, cpu, cpuacct)
    if unified is None:
        raise Unavailable("no cgroup with a cpu controller is mounted")
    controllers = (unified / "cgroup.controllers").read_text().split()
    if "cpu" not in controllers:
        raise Unavailable(f"cgroup v2 at {unified} offers no cpu controller")
    return Hierarchy(2, unified)


class Group:
    """One process's group: its budget, its members, its counters."""

    def __init__(self, hierarchy: Hierarchy, folders: list[Path], period_us: int) -> None:
        self.hierarchy = hierarchy
        self.folders = folders  # the cpu group first, then its cpuacct twin if apart
        self.period_us = period_us
        self.pids: list[int] = []
        self.cores: float | None = None

    def add(self, pid: int) -> None:
        """Move a process, with all its threads, into the group."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(pid))
        self.pids.append(pid)

    def limit(self, cores: float | None) -> None:
        """Give the group this many cores of CPU time per period; None lifts the limit."""
        for name, value in quota_settings(self.hierarchy.version, cores, self.period_us).items():
            (self.folders[0] / name).write_text(value)
        self.cores = cores

    def counters(self) -> Counters:
        stat = (self.folders[0] / "cpu.stat").read_text()
        return counters_from(stat, self.hierarchy.version, self._v1_usage())

    def _v1_usage(self) -> float | None:
        if self.hierarchy.version == 2:
            return None
        for folder in self.folders:
            usage = folder / "cpuacct.usage"
            if usage.exists():
                return int(usage.read_text()) / 1e9
        # No cpuacct: the members' own CPU time, in clock ticks.
        return sum(procstat.cpu_seconds(pid) for pid in self.pids)


class Budgets:
    """The benchmark's groups, all under one parent named after this process, so that two
    runs never share one; close() removes them all, moving any process still in them out."""

    def __init__(self, hierarchy: Hierarchy, period_us: int) -> None:
        self.hierarchy = hierarchy
        self.period_us = period_us
        name = f"microblog-bench-{os.getpid()}"
        roots = [hierarchy.cpu]
        if hierarchy.cpuacct is not None and not hierarchy.counts_usage_with_cpu:
            roots.append(hierarchy.cpuacct)
        self.parents = [root / name for root in roots]
        self.groups: list[Group] = []
        try:
            if hierarchy.version == 2:
                _enable_cpu(hierarchy.cpu)
            for parent in self.parents:
                parent.mkdir()
            if hierarchy.version == 2:
                _enable_cpu(self.parents[0])
        except OSError as error:
            self.close()
            raise Unavailable(f"cannot make cgroups under {hierarchy.cpu}: {error}") from error

    @classmethod
    def here(cls, period_us: int) -> Budgets:
        """This machine's budgets; Unavailable says why there are none."""
        try:
            mounts = MOUNTS.read_text()
        except OSError as error:
            raise Unavailable(f"cannot read {MOUNTS}: {error}") from error
        return cls(find_hierarchy(mounts), period_us)

    @property
    def description(self) -> str:
        version = f"cgroup v{self.hierarchy.version}"
        return f"{version} at {self.parents[0]}, periods of {self.period_us / 1000:g} ms"

    def group(self, name: str) -> Group:
        folders = [parent / name for parent in self.parents]
        for folder in folders:
            folder.mkdir()
        group = Group(self.hierarchy, folders, self.period_us)
        self.groups.append(group)
        return group

    def close(self) -> None:
        """Remove every group; a process still in one goes back to the hierarchy's root."""
        folders = [f for g in self.groups for f in g.folders] + self.parents
        for folder in folders:
            if not folder.exists():
                continue
            root = folder.parent.parent if folder.parent in self.parents else folder.parent
            with suppress(OSError):
                for pid in (folder / "cgroup.procs").read_text().split():
                    with suppress(ProcessLookupError):
                        (root / "cgroup.procs").write_text(pid)
            try:
                folder.rmdir()
            except OSError as error:
                print(f"could not remove the cgroup {folder}: {error}", file=sys.stderr)
        self.groups.clear()

    def __enter__(self) -> Budgets:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _enable_cpu(folder: Path) -> None:
    """v2: let the folder's children have a cpu controller of their own."""
    control = folder / "cgroup.subtree_control"
    if "cpu" not in control.read_text().split():
        control.write_text("+cpu")
