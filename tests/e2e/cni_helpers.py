"""Driving boxnet-cni as a runtime does (CNI_* variables, configuration on stdin), for the CNI
e2e tests."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from boxnet.lab import Daemon, venv_bin

# The two implementations: the C executable runtimes exec (built by `make install`) and the
# Python reference it falls back to; they send boxnetd the same request (cni/verbs.py).
PLUGINS = {"c": venv_bin() / "boxnet-cni", "python": venv_bin() / "boxnet-cni-py"}
PLUGIN = PLUGINS["c"]
_using = [PLUGIN]


def use(implementation: str) -> None:
    """Which implementation cni() runs from now on (a module fixture's parameter)."""
    _using[0] = PLUGINS[implementation]


NETWORK = "cninet"
SUBNET = "10.99.7.0/24"


def config(d: Daemon, version: str = "1.1.0", **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "cniVersion": version,
        "name": NETWORK,
        "type": "boxnet",
        "boxnetHost": f"unix://{d.socket}",
        "ipam": {"subnet": SUBNET, "gateway": "10.99.7.1"},
    }
    conf.update(extra)
    return conf


def cni(
    command: str,
    conf: dict[str, Any] | str | None,
    container_id: str = "",
    netns: str = "",
    ifname: str = "eth0",
    args: str = "",
) -> tuple[int, Any]:
    """Run the plugin as a runtime does; (exit status, parsed stdout or None)."""
    environ = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_ARGS": args,
        "CNI_PATH": str(_using[0].parent),
    }
    stdin = conf if isinstance(conf, str) else json.dumps(conf) if conf is not None else ""
    proc = subprocess.run(
        [str(_using[0])], input=stdin, env=environ, capture_output=True, text=True, timeout=60
    )
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, out
