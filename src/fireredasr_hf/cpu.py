# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""How many CPU threads decoding should use, and how OpenMP threads should wait.

torch's own default is one thread per core of the machine. That is too many where the process may use only part of
the machine (a CPU affinity mask, a container's CPU quota), and OpenMP threads that spin while they wait for each
other burn the cores that other processes, or the other decoding threads, need: on a busy 2-core machine 7 short
files took 44.8 s with torch's default and 1.4 s with one thread. `default_num_threads` counts the physical cores
this process may run on; `prefer_passive_waiting` makes idle OpenMP threads sleep instead of spinning.
"""

import math
import os
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def allowed_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def physical_core_count(cpus: list[int]) -> int:
    """The number of physical cores among the logical `cpus` (hyper-threads of one core count once); the number of
    `cpus` where the topology cannot be read."""
    cores = set()
    for cpu in cpus:
        topology = SYS_CPU / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return len(cores) or len(cpus)


def cgroup_cpu_limit() -> float | None:
    """The CPU quota of this process's control group in cores (e.g. 1.5 for `docker run --cpus 1.5`), the smallest
    along its cgroup path; None without a quota. Reads cgroup v2 (`cpu.max`) and v1 (`cpu.cfs_quota_us`)."""
    limits = []
    try:
        lines = PROC_CGROUP.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2
            directories = [CGROUP_ROOT / path.lstrip("/")]
        elif "cpu" in controllers.split(","):  # cgroup v1
            directories = [CGROUP_ROOT / controllers / path.lstrip("/"), CGROUP_ROOT / "cpu" / path.lstrip("/")]
        else:
            continue
        for directory in directories:
            # The process's own group and its parents; inside a container its group is often shown as the root.
            for folder in [directory, *directory.parents]:
                if not folder.is_relative_to(CGROUP_ROOT):
                    break
                limit = _read_quota(folder)
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def _read_quota(folder: Path) -> float | None:
    """The quota of one cgroup folder in cores: v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD"), else v1."""
    try:
        fields = (folder / "cpu.max").read_text().split()
    except OSError:
        fields = None
    try:
        if fields is not None:
            return int(fields[0]) / int(fields[1]) if len(fields) == 2 and fields[0] != "max" else None
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def default_num_threads() -> int:
    """CPU threads for decoding when the user sets none: `OMP_NUM_THREADS` when set (the user's choice), else the
    physical cores this process may use: those of its affinity mask, at most its cgroup CPU quota (rounded down,
    at least 1)."""
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    cores = physical_core_count(allowed_cpus())
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def prefer_passive_waiting() -> None:
    """Lets idle OpenMP threads sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`) unless the user chose a
    policy. The OpenMP runtime reads this once, when torch loads it: call this before importing torch (applications
    do it at startup; later calls change nothing)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


__all__ = ["allowed_cpus", "cgroup_cpu_limit", "default_num_threads", "physical_core_count", "prefer_passive_waiting"]
