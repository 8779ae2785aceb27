"""Create-body settings boxnet does not implement: refused when set, never silently ignored.

Docker's clients send every key, mostly with zero values (false, 0, "", null, [] or {}), so only a
value that asks for something is refused, with the path of the field and what to do instead.
"""

from __future__ import annotations

from boxnet.errors import InvalidArgument
from boxnet.parsing.body import Field

_LIMITS = "resource limits need cgroups, which boxnet does not manage"
# HostConfig keys whose non-zero value asks for a feature boxnet lacks, and why it lacks it.
_HOST_CONFIG = {
    "Privileged": "containers run without extra privileges",
    "CapAdd": "capabilities are not configurable",
    "CapDrop": "capabilities are not configurable",
    "Devices": "devices are not passed to containers",
    "DeviceRequests": "devices are not passed to containers",
    "PidMode": "every container has its own PID namespace",
    "UsernsMode": "user namespaces are not used",
    "Sysctls": "sysctls are not configurable",
    "SecurityOpt": "security options are not configurable",
    "BlkioWeight": _LIMITS,
    "Ulimits": "resource limits are not configurable",
    "ShmSize": "/dev/shm is a tmpfs of the default size",
    "CgroupParent": "cgroups are not managed",
    "KernelMemory": _LIMITS,
    "OomKillDisable": _LIMITS,
    "OomScoreAdj": "the OOM score is not configurable",
}
_IPC_MODES = ("", "private", "shareable")


def _asks(value: object) -> bool:
    """True unless value is one of the zero values clients send for "not set"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0  # PidsLimit -1, MemorySwap -1: unlimited, i.e. not set
    return bool(value)


def refuse_unsupported(body: Field) -> None:
    from boxnet.runtime import cgroups

    host_config = body["HostConfig"]
    cgroups.limit_files(host_config.obj())  # the limits boxnet serves, checked now
    for key, why in _HOST_CONFIG.items():
        if _asks(host_config[key].value):
            raise InvalidArgument(
                f"HostConfig.{key} is not supported by boxnet: {why}", hint="leave it unset"
            )
    for group in host_config["GroupAdd"].items():
        if not isinstance(group.value, str | int) or not str(group.value).strip():
            raise InvalidArgument(
                f"HostConfig.GroupAdd: invalid group {group.value!r}", hint="a GID or a group name"
            )
    uts = host_config["UTSMode"].value
    if uts not in (None, "", "host"):
        raise InvalidArgument(f"invalid UTS mode: {uts}", hint="host, or leave it unset")
    if uts == "host" and (body["Hostname"].text() or body["Domainname"].text()):
        raise InvalidArgument("conflicting options: hostname and the UTS mode",
                              hint="--uts host keeps the host's names")  # fmt: skip
    ipc = host_config["IpcMode"].value
    if ipc not in (None, *_IPC_MODES):
        raise InvalidArgument(
            f"HostConfig.IpcMode {ipc!r} is not supported by boxnet: every container has its"
            " own IPC namespace",
            hint="leave it unset",
        )
    driver = host_config["VolumeDriver"].value
    if driver not in (None, "", "local"):
        raise InvalidArgument(
            f'error looking up volume plugin {driver}: plugin "{driver}" not found',
            hint="boxnet has the local volume driver only",
        )
    runtime = host_config["Runtime"].value
    if runtime not in (None, "", "runc", "boxnet"):
        raise InvalidArgument(
            f"HostConfig.Runtime {runtime!r} is not supported by boxnet: its shim is the only"
            " runtime",
            hint="leave it unset",
        )
    if body["NetworkDisabled"].flag():
        raise InvalidArgument(
            "NetworkDisabled is not supported by boxnet", hint="use --network none (NetworkMode)"
        )
    test = body["Healthcheck"]["Test"].strings()
    if test and test[0] != "NONE":
        raise InvalidArgument("Healthcheck is not supported by boxnet", hint="leave it unset")
