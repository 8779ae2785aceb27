"""pipework's `dhcp`: busybox udhcpc run in the container's network namespace.

udhcpc only negotiates; its script prints the lease and boxnet applies it over netlink (so the
address is set the same way as a static one, and recorded). One-shot (`-q`): no renewal yet.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from boxnet.errors import InvalidArgument, Unavailable

SCRIPT = """#!/bin/sh
# boxnet: report the lease, change nothing (boxnetd applies it).
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
echo "BOXNET-LEASE ip=$ip mask=$mask router=${router%% *}"
"""


@dataclass(frozen=True)
class Lease:
    interface: IPv4Interface
    router: IPv4Address | None


def request(netns_path: str, ifname: str, spec: str, state_dir: Path) -> Lease:
    busybox = shutil.which("busybox")
    nsenter = shutil.which("nsenter")
    if busybox is None or nsenter is None:
        raise Unavailable("dhcp needs busybox (udhcpc) and nsenter on the host")
    script = state_dir / "udhcpc.script"
    if not script.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        script.write_text(SCRIPT)
        script.chmod(0o755)
    extra = spec.split(":", 1)[1].split() if ":" in spec else []
    argv = [nsenter, f"--net={netns_path}", "--", busybox, "udhcpc", "-i", ifname]
    argv += ["-f", "-q", "-n", "-t", "4", "-T", "1", "-s", str(script), *extra]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        done = None
    lines = [x for x in (done.stdout if done else "").splitlines() if x.startswith("BOXNET-LEASE")]
    if not lines:
        raise InvalidArgument(
            f"no DHCP lease on {ifname}: no server answered",
            hint="check that a DHCP server serves this LAN, or give IP/MASK instead",
        )
    fields = dict(f.split("=", 1) for f in lines[-1].split()[1:])
    router = fields.get("router") or ""
    return Lease(
        IPv4Interface(f"{fields['ip']}/{fields['mask']}"),
        IPv4Address(router) if router else None,
    )
