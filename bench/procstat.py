"""CPU time of a process, and of a whole PostgreSQL server, from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: [state, ppid, ...]."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its threads."""
    fields = _fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def server_cpu_seconds(postmaster: int) -> float:
    """CPU time of a PostgreSQL server: the postmaster, its live children, and (through the
    postmaster's cutime and cstime) the children that already exited."""
    fields = _fields(postmaster)
    total = sum(int(value) for value in fields[11:15]) / TICKS
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(child[1]) == postmaster:
            total += (int(child[11]) + int(child[12])) / TICKS
    return total


def machine_times() -> tuple[float, float]:
    """CPU time the machine spent busy, and idle, since boot, every core added up."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS, (idle + iowait) / TICKS


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine since boot, every core added up."""
    return machine_times()[0]


def postmaster_pid(data_directory: str) -> int | None:
    """The server's process id, when its data directory is on this machine and readable."""
    try:
        first_line = (Path(data_directory) / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first_line)
        _fields(pid)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def rss_bytes(pid: int) -> int:
    """The resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/{pid}/status has no VmRSS")
