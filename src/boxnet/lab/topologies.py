"""The standard lab topologies (diagrams in boxnet.lab's docstring)."""

from __future__ import annotations

from types import TracebackType
from typing import NamedTuple

from boxnet.lab.core import Lab
from boxnet.lab.netns import Netns, Switch
from boxnet.lab.proc import LabError


class BasicLab(NamedTuple):
    """Unpacks as (lab, host, outside); `.client2` is the machine behind outside's router."""

    lab: Lab
    host: Netns
    outside: Netns

    @property
    def client2(self) -> Netns:
        return self.lab["client2"]

    def __enter__(self) -> BasicLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.lab.__exit__(exc_type, exc, tb)


class LanLab(NamedTuple):
    """A LAN segment: switch, gateway (.2), hosts (.142, .143, …), workstation (.10)."""

    lab: Lab
    switch: Switch
    gateway: Netns
    hosts: tuple[Netns, ...]
    workstation: Netns

    def __enter__(self) -> LanLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.lab.__exit__(exc_type, exc, tb)


# The basic lab's IPv6 (role, interface, address): the same links as its IPv4 ones.
OUTSIDE_IPV6 = "2001:db8:203::1"
HOST_IPV6 = "2001:db8:203::2"
IPV6_ADDRESSES = (
    ("host", "eth0", f"{HOST_IPV6}/64"),
    ("outside", "eth0", f"{OUTSIDE_IPV6}/64"),
    ("outside", "eth1", "2001:db8:198::1/64"),
    ("client2", "eth0", "2001:db8:198::2/64"),
)


def basic_lab(lab: Lab | None = None, *, http_port: int = 80) -> BasicLab:
    """host (eth0 203.0.113.2/24, default via .1) -- outside (203.0.113.1/24, HTTP/UDP echo on
    http_port, router) -- client2 (198.51.100.2/24 via 198.51.100.1 = outside's eth1); and IPv6
    on the same links: 2001:db8:203::/64 (host ::2, outside ::1), 2001:db8:198::/64."""
    own = lab is None
    lab = lab if lab is not None else Lab("basic")
    try:
        host = lab.netns("host")
        outside = lab.netns("outside")
        client2 = lab.netns("client2")
        lab.link(host, "eth0", "203.0.113.2/24", outside, "eth0", "203.0.113.1/24")
        lab.link(outside, "eth1", "198.51.100.1/24", client2, "eth0", "198.51.100.2/24")
        lab.route(host, "default", "203.0.113.1")
        lab.route(client2, "default", "198.51.100.1")
        # IPv6 on the same links, from the documentation prefix 2001:db8::/32.
        for ns, ifname, addr in IPV6_ADDRESSES:
            ns_of = {"host": host, "outside": outside, "client2": client2}[ns]
            # nodad: usable at once (a tentative address would hold the first packets back)
            ns_of.ip("addr", "add", addr, "dev", ifname, "nodad")
        host.ip("-6", "route", "replace", "default", "via", OUTSIDE_IPV6)
        client2.ip("-6", "route", "replace", "default", "via", "2001:db8:198::1")
        # Forwarding is per namespace: this turns on routing inside "outside" only.
        outside.sysctl("net.ipv4.ip_forward", "1")
        outside.sysctl("net.ipv6.conf.all.forwarding", "1")
        lab.http_server(outside, http_port)
    except BaseException:
        if own:
            lab.close()
        raise
    return BasicLab(lab, host, outside)


def lan_lab(hosts: int = 2, lab: Lab | None = None) -> LanLab:
    """One Ethernet segment 192.168.198.0/24 on bridge sw0 in namespace "switch": gateway
    eth0 .2, hosts host1..hostN with ens33 .142, .143, … (default via .2), workstation eth0 .10."""
    if not 1 <= hosts <= 100:
        raise LabError(f"lan_lab supports 1..100 hosts, not {hosts}")
    own = lab is None
    lab = lab if lab is not None else Lab("lan")
    try:
        switch = lab.switch("switch")
        gateway = lab.netns("gateway")
        switch.plug(gateway, "eth0", "192.168.198.2/24")
        members = []
        for i in range(hosts):
            ns = lab.netns(f"host{i + 1}")
            switch.plug(ns, "ens33", f"192.168.198.{142 + i}/24")
            lab.route(ns, "default", "192.168.198.2")
            members.append(ns)
        workstation = lab.netns("workstation")
        switch.plug(workstation, "eth0", "192.168.198.10/24")
    except BaseException:
        if own:
            lab.close()
        raise
    return LanLab(lab, switch, gateway, tuple(members), workstation)
