"""CPU budgets: reading both versions' counters, writing quotas, choosing the hierarchy or
falling back, and (where this machine lets us) a real group that throttles a busy process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cgroups
import pytest

V1_STAT = """nr_periods 120
nr_throttled 95
throttled_time 812345678
nr_bursts 0
burst_time 0
"""
V2_STAT = """usage_usec 1500000
user_usec 1200000
system_usec 300000
nr_periods 200
nr_throttled 150
throttled_usec 2500000
nr_bursts 0
burst_usec 0
"""
# A hybrid machine: cpu and cpuacct in v1 hierarchies of their own, cpuset beside them.
HYBRID_MOUNTS = """tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_v1_counters_read_periods_and_nanoseconds_of_throttling():
    counters = cgroups.counters_from(V1_STAT, 1, usage_seconds=2.5)
    assert counters == cgroups.Counters(2.5, 120, 95, 0.812345678)


def test_v2_counters_read_usage_and_microseconds_of_throttling():
    counters = cgroups.counters_from(V2_STAT, 2, usage_seconds=None)
    assert counters == cgroups.Counters(1.5, 200, 150, 2.5)


def test_v1_counters_need_the_usage_from_cpuacct_or_proc():
    with pytest.raises(ValueError, match="cpuacct"):
        cgroups.counters_from(V1_STAT, 1, usage_seconds=None)


def test_counters_of_a_run_are_the_difference_and_its_throttled_share():
    before = cgroups.Counters(1.0, 100, 40, 0.5)
    after = cgroups.Counters(2.5, 300, 190, 1.5)
    run = after - before
    assert run == cgroups.Counters(1.5, 200, 150, 1.0)
    assert run.throttled_share == 0.75
    assert cgroups.Counters(0.0, 0, 0, 0.0).throttled_share == 0.0


def test_quota_of_a_budget_is_its_share_of_the_period_in_both_versions():
    assert cgroups.quota_settings(1, 0.3, 10_000) == {
        "cpu.cfs_period_us": "10000",
        "cpu.cfs_quota_us": "3000",
    }
    assert cgroups.quota_settings(2, 0.3, 100_000) == {"cpu.max": "30000 100000"}


def test_no_budget_lifts_the_limit_in_both_versions():
    assert cgroups.quota_settings(1, None, 10_000)["cpu.cfs_quota_us"] == "-1"
    assert cgroups.quota_settings(2, None, 10_000) == {"cpu.max": "max 10000"}


def test_a_quota_the_kernel_would_refuse_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="longer period"):
        cgroups.quota_settings(1, 0.3, 2_000)  # 600 µs
    with pytest.raises(ValueError, match="outside 1 ms to 1 s"):
        cgroups.quota_settings(2, 0.3, 2_000_000)


def test_v1_cpu_is_chosen_on_a_hybrid_machine_with_cpuacct_apart():
    hierarchy = cgroups.find_hierarchy(HYBRID_MOUNTS)
    assert hierarchy == cgroups.Hierarchy(
        1, Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/cpuacct")
    )
    assert not hierarchy.counts_usage_with_cpu


def test_v1_cpu_and_cpuacct_mounted_together_count_usage_in_the_same_group():
    mounts = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n"
    hierarchy = cgroups.find_hierarchy(mounts)
    assert hierarchy.cpu == hierarchy.cpuacct == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert hierarchy.counts_usage_with_cpu


def test_cpuset_alone_is_no_cpu_controller(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    mounts = (
        f"cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0\ncgroup2 {tmp_path} cgroup2 rw 0 0\n"
    )
    with pytest.raises(cgroups.Unavailable, match="no cpu controller"):
        cgroups.find_hierarchy(mounts)


def test_v2_is_chosen_when_it_offers_the_cpu_controller(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    hierarchy = cgroups.find_hierarchy(f"cgroup2 {tmp_path} cgroup2 rw,nsdelegate 0 0\n")
    assert hierarchy == cgroups.Hierarchy(2, tmp_path)


def test_no_cgroups_mounted_means_no_budgets():
    with pytest.raises(cgroups.Unavailable, match="no cgroup"):
        cgroups.find_hierarchy("proc /proc proc rw 0 0\n")


def test_budgets_fall_back_when_groups_cannot_be_made(tmp_path):
    not_a_folder = tmp_path / "cpu"
    not_a_folder.write_text("")
    with pytest.raises(cgroups.Unavailable, match="cannot make cgroups"):
        cgroups.Budgets(cgroups.Hierarchy(1, not_a_folder), 10_000)


@pytest.fixture
def budgets():
    try:
        made = cgroups.Budgets.here(10_000)
    except cgroups.Unavailable as why:
        pytest.skip(f"no CPU budgets here: {why}")
    with made:
        yield made


@pytest.fixture
def busy():
    popen = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield popen
    popen.kill()
    popen.wait()


def test_a_busy_process_in_a_budget_is_throttled_to_it(budgets, busy):
    group = budgets.group("busy")
    group.add(busy.pid)
    group.limit(0.2)
    before, started = group.counters(), time.monotonic()
    deadline = started + 10
    while (run := group.counters() - before).periods < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert run.periods >= 50
    assert run.throttled_share > 0.5
    # Never more than the budget (one period's quota of slack); less if the machine is busy.
    assert run.usage_seconds <= 0.2 * elapsed + 0.002 + 0.01


def test_closing_moves_live_processes_out_and_removes_every_group(budgets, busy):
    group = budgets.group("busy")
    group.add(busy.pid)
    group.limit(0.2)
    budgets.close()
    assert not any(folder.exists() for folder in group.folders + budgets.parents)
    assert busy.poll() is None
    assert "microblog-bench" not in Path(f"/proc/{busy.pid}/cgroup").read_text()
