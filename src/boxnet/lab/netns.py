"""A lab's named network namespace and its bridge-in-a-namespace "switch"."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Any

from boxnet.lab.proc import run, tool

if TYPE_CHECKING:
    from boxnet.lab.core import Lab


@dataclass(frozen=True)
class Netns:
    """A network namespace made by a lab, bind-mounted at /run/netns/<name>.

    Commands enter only its *network* namespace (nsenter --net), so they see the machine's
    mounts; note that /sys/class/net therefore still shows the caller's view: use `ip -j`.
    """

    name: str
    role: str
    lab: Lab = field(repr=False, compare=False)

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs argv inside this namespace."""
        return [tool("nsenter"), f"--net={self.path}", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespace and wait; output is captured as text."""
        return run(self.argv(argv), check=check, timeout=timeout, input=input)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start argv inside the namespace; the lab kills it by PID at close.

        nsenter exec()s the command, so the Popen's pid is the command's own pid.
        """
        proc: subprocess.Popen[Any] = subprocess.Popen(self.argv(argv), **kw)
        self.lab.track(proc)
        return proc

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([tool("ip"), *args], check=check)

    def ip_json(self, *args: str) -> Any:
        """Parsed `ip -j ARGS` output inside the namespace ([] when ip prints nothing)."""
        out = self.run([tool("ip"), "-j", *args]).stdout.strip()
        return json.loads(out) if out else []

    def sysctl(self, key: str, value: str) -> None:
        """Set a per-namespace sysctl (net.*): /proc/sys/net follows the writer's namespace."""
        self.run([tool("sysctl"), "-qw", f"{key}={value}"])

    def addr(self, ifname: str, cidr: str | None, mac: str | None = None) -> None:
        """Give ifname an optional MAC and address and bring it up."""
        if mac:
            self.ip("link", "set", "dev", ifname, "address", mac)
        if cidr:
            self.ip("addr", "add", cidr, "dev", ifname)
        self.ip("link", "set", "dev", ifname, "up")

    def ping(self, dest: str, count: int = 1, timeout: float = 2) -> bool:
        """True when dest answers an ICMP echo from inside this namespace."""
        argv = ["ping", "-n", "-c", str(count), "-W", str(int(max(1, timeout))), dest]
        return self.run(argv, check=False, timeout=timeout * count + 5).returncode == 0


@dataclass(frozen=True)
class Switch:
    """A namespace holding Linux bridge `sw0`: an Ethernet segment other namespaces plug into."""

    ns: Netns
    bridge: str = "sw0"
    _ports: Iterator[int] = field(default_factory=lambda: count(1), repr=False, compare=False)

    def plug(self, ns: Netns, ifname: str, addr: str | None, mac: str | None = None) -> str:
        """Connect ns's new interface ifname to the bridge; returns the switch-side port name."""
        port = f"p{next(self._ports)}"
        # Created from inside the switch namespace: the peer is born directly in ns, so no
        # interface ever appears in the namespace the tests run in.
        self.ns.ip("link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns.name)
        self.ns.ip("link", "set", "dev", port, "master", self.bridge, "up")
        ns.addr(ifname, addr, mac)
        return port
