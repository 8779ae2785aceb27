"""`boxnet version`, `boxnet info`, `boxnet system gc|reload`."""

from __future__ import annotations

import argparse
import os
import sys

from boxnet import API_VERSION, __version__

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

# Docker's names for machine architectures (what `docker version` prints as OS/Arch).
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
# `info` prints these first, in Docker's order and wording; other scalar keys follow as they come.
_INFO_KEYS = (
    ("ServerVersion", "Server Version"),
    ("FirewallBackend", "Firewall Backend"),
    ("KernelVersion", "Kernel Version"),
    ("OperatingSystem", "Operating System"),
    ("Name", "Name"),
    ("DockerRootDir", "Docker Root Dir"),
)
_INFO_COUNTS = (
    "Containers",
    "ContainersRunning",
    "ContainersPaused",
    "ContainersStopped",
    "Images",
)


def register(sub: Any) -> None:
    from boxnet.cli.main import group_parser, verb

    p = verb(sub, "version")
    p.add_argument("-f", "--format", help='"json" for JSON')
    p.set_defaults(func=cmd_version)
    p = verb(sub, "info")
    p.add_argument("-f", "--format", help='"json" for JSON')
    p.set_defaults(func=cmd_info)
    _, system = group_parser(sub, "system")
    p = system.add_parser("gc", help="remove kernel objects, rules and addresses no record owns")
    p.set_defaults(func=cmd_gc)
    p = system.add_parser("reload", help="rebuild the firewall from the records")
    p.set_defaults(func=cmd_reload)
    p = system.add_parser("info", help="same as boxnet info")
    p.add_argument("-f", "--format", help='"json" for JSON')
    p.set_defaults(func=cmd_info)


def client_version() -> dict[str, str]:
    uname = os.uname()
    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": sys.version.split()[0],
        "Os": uname.sysname.lower(),
        "Arch": _ARCH.get(uname.machine, uname.machine),
    }


def _lines(title: str, version: dict[str, Any], indent: str) -> list[str]:
    rows = [
        ("Version", version.get("Version")),
        ("API version", version.get("ApiVersion")),
        ("Python version", version.get("PythonVersion")),
        ("Kernel version", version.get("KernelVersion")),
        ("OS/Arch", f"{version.get('Os', '')}/{version.get('Arch', '')}"),
    ]
    out = [title]
    # Values start at column 20 at every nesting level, as in `docker version`.
    out += [
        f"{indent}{(k + ':').ljust(20 - len(indent))}{v}" for k, v in rows if v not in (None, "")
    ]
    return out


def cmd_version(ctx: Any, args: argparse.Namespace) -> int:
    client = client_version()
    if args.format == "json":
        from boxnet.cli.render import print_json_lines

        server = ctx.client.call("GET", "/version")
        print_json_lines([{"Client": client, "Server": server}])
        return 0
    # The client part first: it is useful even when the daemon does not answer.
    sys.stdout.write("\n".join(_lines("Client:", client, " ")) + "\n")
    sys.stdout.flush()
    server = ctx.client.call("GET", "/version")
    sys.stdout.write("\n" + "\n".join(["Server:", *_lines(" Engine:", server, "  ")]) + "\n")
    return 0


def info_text(info: dict[str, Any]) -> str:
    counts = {k: info.get(k, 0) for k in _INFO_COUNTS}
    out = [
        "Server:",
        f" Containers: {counts['Containers']}",
        f"  Running: {counts['ContainersRunning']}",
        f"  Paused: {counts['ContainersPaused']}",
        f"  Stopped: {counts['ContainersStopped']}",
        f" Images: {counts['Images']}",
    ]
    shown = set(_INFO_COUNTS)
    for key, label in _INFO_KEYS:
        if key in info:
            out.append(f" {label}: {_scalar(info[key])}")
            shown.add(key)
            if isinstance(info[key], dict):  # FirewallBackend's Info pairs, as Docker shows them
                out += [f"  {pair[0]}: {pair[1]}" for pair in info[key].get("Info") or []]
    for key, value in info.items():
        if key not in shown and (value is None or isinstance(value, str | int | float | bool)):
            out.append(f" {key}: {_scalar(value)}")
    return "\n".join(out) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, dict) and "Driver" in value:  # e.g. FirewallBackend {"Driver": ...}
        return _scalar(value["Driver"])
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def cmd_info(ctx: Any, args: argparse.Namespace) -> int:
    info = ctx.client.call("GET", "/info")
    if args.format == "json":
        from boxnet.cli.render import print_json_lines

        print_json_lines([info])
    else:
        sys.stdout.write(info_text(info))
    return 0


def cmd_gc(ctx: Any, args: argparse.Namespace) -> int:
    result = ctx.client.call("POST", "/boxnet/system/gc") or {}
    removed, released = result.get("Removed") or [], result.get("Released") or []
    resolved = result.get("Resolved") or []
    for item in resolved:
        print(f"Resolved: {item}")
    for item in removed:
        print(f"Removed: {item}")
    for item in released:
        print(f"Released: {item}")
    if not removed and not released and not resolved:
        print("Nothing to clean up")
    return 0


def cmd_reload(ctx: Any, args: argparse.Namespace) -> int:
    ctx.client.request("POST", "/boxnet/system/reload")
    print("Firewall rules rebuilt from the records")
    return 0
