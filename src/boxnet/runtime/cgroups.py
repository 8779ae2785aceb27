"""Resource limits through cgroup v1 (Docker's cgroupfs layout): a container asking for limits
gets /sys/fs/cgroup/CONTROLLER/boxnet/ID for each controller its limits need; the shim's
child joins them before it execs (writing 0 to cgroup.procs: itself), so every process of the
container is inside from the first instruction. `update` writes the new values in place.

HostConfig fields served: Memory, MemorySwap (default twice Memory, as Docker; -1 unlimited;
skipped where the kernel has no swap accounting), MemoryReservation, MemorySwappiness,
CpuShares, CpuQuota, CpuPeriod, NanoCpus, CpusetCpus, CpusetMems, PidsLimit,
DeviceCgroupRules (devices.allow: containers are not denied devices to begin with, so an allow
rule holds). Where a controller is not mounted (a cgroup v2 only host) asking for its limits
is refused with that reason.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from boxnet.errors import InvalidArgument

ROOT = Path("/sys/fs/cgroup")
PARENT = "boxnet"
MIN_MEMORY = 6 * 1024 * 1024  # Docker's minimum
_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_DEVICE_RULE = re.compile(r"^[abc] (\d+|\*):(\d+|\*) [rwm]{1,3}$")
FIELDS = (
    "Memory", "MemorySwap", "MemoryReservation", "MemorySwappiness", "CpuShares", "CpuQuota",
    "CpuPeriod", "NanoCpus", "CpusetCpus", "CpusetMems", "PidsLimit", "DeviceCgroupRules",
)  # fmt: skip

Files = dict[str, list[tuple[str, str]]]  # controller -> [(file, value)], written in order


def _int(hc: dict[str, Any], key: str) -> int:
    value = hc.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"HostConfig.{key}: expected an integer, got {value!r}")
    return value


def limit_files(hc: dict[str, Any]) -> Files:
    """The cgroup files a HostConfig's limits write, validated (InvalidArgument)."""
    out: Files = {}
    memory, swap = _int(hc, "Memory"), _int(hc, "MemorySwap")
    if memory < 0 or 0 < memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB", hint="e.g. --memory 64m")
    if swap > 0 and (not memory or swap < memory):
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
            hint="--memory-swap counts memory plus swap: set --memory too, below it",
        )
    mem: list[tuple[str, str]] = []
    if memory:
        mem.append(("memory.memsw.limit_in_bytes", "-1"))  # first: limit <= memsw always
        mem.append(("memory.limit_in_bytes", str(memory)))
        mem.append(("memory.memsw.limit_in_bytes", str(swap or 2 * memory)))
    if _int(hc, "MemoryReservation") > 0:
        mem.append(("memory.soft_limit_in_bytes", str(_int(hc, "MemoryReservation"))))
    swappiness = hc.get("MemorySwappiness")
    if isinstance(swappiness, int) and not isinstance(swappiness, bool) and swappiness >= 0:
        if swappiness > 100:
            raise InvalidArgument(
                f"Invalid value: {swappiness}, valid memory swappiness range is 0-100"
            )
        mem.append(("memory.swappiness", str(swappiness)))
    if mem:
        out["memory"] = mem
    cpu: list[tuple[str, str]] = []
    if _int(hc, "CpuShares") > 0:
        cpu.append(("cpu.shares", str(max(2, _int(hc, "CpuShares")))))
    nano, quota, period = _int(hc, "NanoCpus"), _int(hc, "CpuQuota"), _int(hc, "CpuPeriod")
    if nano and (quota or period):
        raise InvalidArgument(
            "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set"
        )
    if nano > 0:
        cpu += [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", str(nano // 10_000))]
    if period > 0:
        cpu.append(("cpu.cfs_period_us", str(period)))
    if quota > 0:
        cpu.append(("cpu.cfs_quota_us", str(quota)))
    if cpu:
        out["cpu"] = cpu
    cpuset: list[tuple[str, str]] = []
    for key, name in (("CpusetCpus", "cpuset.cpus"), ("CpusetMems", "cpuset.mems")):
        text = hc.get(key) or ""
        if text:
            if not isinstance(text, str) or not _CPUSET.match(text):
                raise InvalidArgument(f"Invalid value {text!r} for {key.lower()}",
                                      hint="a list such as 0-2,4")  # fmt: skip
            cpuset.append((name, text))
    if cpuset:
        out["cpuset"] = cpuset
    if _int(hc, "PidsLimit") > 0:
        out["pids"] = [("pids.max", str(_int(hc, "PidsLimit")))]
    rules = hc.get("DeviceCgroupRules") or []
    for rule in rules:
        if not isinstance(rule, str) or not _DEVICE_RULE.match(rule):
            raise InvalidArgument(f"invalid device cgroup format '{rule}'",
                                  hint="TYPE MAJOR:MINOR ACCESS, e.g. 'c 7:128 rwm'")  # fmt: skip
    if rules:
        out["devices"] = [("devices.allow", rule) for rule in rules]
    for controller in out:
        if not (ROOT / controller / "cgroup.procs").exists():
            raise InvalidArgument(
                f"resource limits on {controller} are not supported here: no cgroup v1"
                f" {controller} controller at {ROOT / controller}",
                hint="leave the limit unset",
            )
    return out


def _dir(controller: str, container_id: str) -> Path:
    return ROOT / controller / PARENT / container_id


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError:
        if path.name.startswith("memory.memsw"):
            return  # no swap accounting in this kernel: Docker goes on without (it warns)
        raise
    except OSError as exc:
        raise InvalidArgument(f"cannot set {path.name} to {value}: {exc.strerror}") from None


def _prepare_parent(controller: str) -> None:
    parent = ROOT / controller / PARENT
    parent.mkdir(exist_ok=True)
    if controller == "cpuset":  # a cpuset child needs its parent's cpus and mems set
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not (parent / name).read_text().strip():
                (parent / name).write_text((ROOT / controller / name).read_text().strip())


def setup(container_id: str, hc: dict[str, Any]) -> tuple[str, ...]:
    """The container's cgroup directories, made and written (none when it asks no limits)."""
    made: list[str] = []
    try:
        for controller, values in limit_files(hc).items():
            _prepare_parent(controller)
            path = _dir(controller, container_id)
            path.mkdir(exist_ok=True)
            made.append(str(path))
            if controller == "cpuset":
                for name in ("cpuset.cpus", "cpuset.mems"):  # defaults: the parent's
                    _write(path / name, (path.parent / name).read_text().strip())
            for name, value in values:
                _write(path / name, value)
    except BaseException:
        remove(container_id)
        raise
    return tuple(made)


def update(container_id: str, hc: dict[str, Any]) -> None:
    """New limits for a running container whose cgroups exist (the others get them at start)."""
    for controller, values in limit_files(hc).items():
        path = _dir(controller, container_id)
        if not path.is_dir():
            raise InvalidArgument(
                f"cannot update the {controller} limits of a container started without any",
                hint="restart the container: it starts with the new limits",
            )
        for name, value in values:
            _write(path / name, value)


def remove(container_id: str) -> None:
    """Remove the container's cgroups (they must be empty: called once it has ended)."""
    for controller in ("memory", "cpu", "cpuset", "pids", "devices"):
        with contextlib.suppress(OSError):
            os.rmdir(_dir(controller, container_id))
