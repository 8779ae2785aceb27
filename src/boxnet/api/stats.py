"""Docker's stats document for a container, from /proc (runtime/procfs.py) since boxnet runs
without cgroups: CPU summed over the container's live processes, memory as their RSS, networks
from its netns. docs/CHOICES.md says what that approximates."""

from __future__ import annotations

import os
from typing import Any

from boxnet.clock import ZERO_TIME, now_rfc3339
from boxnet.model import Container, State
from boxnet.runtime import procfs


def sample(c: Container) -> dict[str, Any]:
    """One reading: cpu_stats, memory_stats, pids_stats, networks (precpu_stats left empty)."""
    running = c.state == State.RUNNING and c.pid > 0
    procs = procfs.processes(c.pid) if running else []
    user = sum(p.utime for p in procs) * procfs.NS_PER_TICK
    kernel = sum(p.stime for p in procs) * procfs.NS_PER_TICK
    cpus = os.cpu_count() or 1
    doc: dict[str, Any] = {
        "read": now_rfc3339() if running else ZERO_TIME,
        "preread": ZERO_TIME,
        "id": c.id,
        "name": "/" + c.name,
        "num_procs": 0,
        "pids_stats": {"current": len(procs)} if running else {},
        "blkio_stats": {
            key: None
            for key in (
                "io_service_bytes_recursive",
                "io_serviced_recursive",
                "io_queue_recursive",
                "io_service_time_recursive",
                "io_wait_time_recursive",
                "io_merged_recursive",
                "io_time_recursive",
                "sectors_recursive",
            )
        },
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": user + kernel,
                "usage_in_kernelmode": kernel,
                "usage_in_usermode": user,
            },
            "system_cpu_usage": procfs.system_cpu_ns() if running else 0,
            "online_cpus": cpus if running else 0,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": (
            {
                "usage": sum(p.rss_pages for p in procs) * procfs.PAGE,
                "limit": procfs.memory_total(),
                "stats": {},
            }
            if running
            else {}
        ),
    }
    if running and c.netns_path:  # host mode: the host's interfaces are not the container's
        doc["networks"] = procfs.net_dev(c.pid)
    return doc


def with_previous(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Docker's precpu_stats/preread: the reading before, from which clients compute CPU %."""
    current["precpu_stats"] = (
        previous["cpu_stats"]
        if previous
        else {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}
    )
    current["preread"] = previous["read"] if previous else ZERO_TIME
    return current
