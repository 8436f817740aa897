"""What the results file records about the machine and the software a run was measured on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def package_versions(distributions: list[str]) -> dict[str, str | None]:
    """Installed version of each distribution, None when it is not installed."""
    versions: dict[str, str | None] = {}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info(distributions: list[str]) -> dict:
    usable_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores,
        "memory_total_mib": _memory_total_mib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(distributions),
    }


def _busy_and_total_jiffies() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_until_idle(threshold: float = 0.10, window: float = 0.5, timeout: float = 30.0) -> float:
    """Wait until the machine's CPUs are busy less than ``threshold`` of a ``window``; return
    the seconds waited. A contender's leftovers (a Ray cluster shutting down, Dask's nannies,
    the kernel flushing files) would otherwise load the next contender's run. Gives up after
    ``timeout`` (a shared machine may never be quiet) and returns anyway.
    """
    if not Path("/proc/stat").exists():
        return 0.0
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        busy_before, total_before = _busy_and_total_jiffies()
        time.sleep(window)
        busy_after, total_after = _busy_and_total_jiffies()
        if (busy_after - busy_before) <= threshold * max(total_after - total_before, 1):
            break
    return time.monotonic() - started
