"""Netlink and raw-socket verbs for LAN attachment: moving a NIC's addresses and routes, bridges
with a given MAC, macvlan/VLAN children, ARP probes and gratuitous ARP (no policy here).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.errors import KernelError
from boxnet.kernel.links import _fail, ipr_in
from boxnet.kernel.netns import _check, _in_thread, _libc

CLONE_NEWNET = 0x40000000
ETH_P_ARP = 0x0806
RTPROT_KERNEL = 2
MAIN_TABLE = 254
RTNH_F_ONLINK = 4


@dataclass(frozen=True)
class AddrState:
    family: int
    address: str
    prefixlen: int
    broadcast: str | None = None


@dataclass(frozen=True)
class RouteState:
    family: int
    dst: str | None
    dst_len: int
    gateway: str | None
    priority: int | None
    scope: int
    proto: int
    prefsrc: str | None
    rtype: int
    onlink: bool = False


@dataclass(frozen=True)
class LinkState:
    """What hostbridge moves from a NIC: its addresses and the routes through it."""

    index: int
    ifname: str
    mac: str
    mtu: int
    addresses: tuple[AddrState, ...] = ()
    routes: tuple[RouteState, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "ifname": self.ifname,
            "mac": self.mac,
            "mtu": self.mtu,
            "addresses": [a.__dict__ for a in self.addresses],
            "routes": [r.__dict__ for r in self.routes],
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> LinkState:
        return LinkState(
            index=0,
            ifname=d["ifname"],
            mac=d["mac"],
            mtu=d["mtu"],
            addresses=tuple(AddrState(**a) for a in d["addresses"]),
            routes=tuple(RouteState(**r) for r in d["routes"]),
        )


def _movable_address(family: int, address: str) -> bool:
    # IPv6 link-local addresses belong to the interface itself (the kernel makes them).
    return not (family == socket.AF_INET6 and address.lower().startswith("fe80"))


def snapshot(ipr: IPRoute, ifname: str) -> LinkState | None:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        return None
    index = found[0]
    msg = ipr.get_links(index)[0]
    addrs = []
    for a in ipr.get_addr(index=index):
        family, address = a["family"], a.get_attr("IFA_ADDRESS")
        if family not in (socket.AF_INET, socket.AF_INET6) or not _movable_address(family, address):
            continue
        addrs.append(AddrState(family, address, a["prefixlen"], a.get_attr("IFA_BROADCAST")))
    routes = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for r in ipr.get_routes(family=family, table=MAIN_TABLE):
            # Connected routes come back by themselves with the addresses; move only the rest.
            if r.get_attr("RTA_OIF") != index or r["proto"] == RTPROT_KERNEL:
                continue
            dst = r.get_attr("RTA_DST")
            if family == socket.AF_INET6 and (dst or "").startswith(("fe80", "ff00")):
                continue
            routes.append(
                RouteState(
                    family=family,
                    dst=dst,
                    dst_len=r["dst_len"],
                    gateway=r.get_attr("RTA_GATEWAY"),
                    priority=r.get_attr("RTA_PRIORITY"),
                    scope=r["scope"],
                    proto=r["proto"],
                    prefsrc=r.get_attr("RTA_PREFSRC"),
                    rtype=r["type"],
                    onlink=bool(r["flags"] & RTNH_F_ONLINK),
                )
            )
    return LinkState(
        index=index,
        ifname=ifname,
        mac=msg.get_attr("IFLA_ADDRESS") or "",
        mtu=msg.get_attr("IFLA_MTU") or 1500,
        addresses=tuple(addrs),
        routes=tuple(routes),
    )


def _route_args(r: RouteState, index: int) -> dict[str, Any]:
    args: dict[str, Any] = {
        "family": r.family,
        "dst_len": r.dst_len,
        "oif": index,
        "scope": r.scope,
        "proto": r.proto,
        "type": r.rtype,
        "table": MAIN_TABLE,
    }
    if r.onlink:
        args["flags"] = RTNH_F_ONLINK
    if r.dst:
        args["dst"] = r.dst
    for key, value in (("gateway", r.gateway), ("priority", r.priority), ("prefsrc", r.prefsrc)):
        if value is not None:
            args[key] = value
    return args


def add_route(ipr: IPRoute, r: RouteState, index: int) -> None:
    try:
        ipr.route("add", **_route_args(r, index))
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _fail(f"add route to {r.dst or 'default'}/{r.dst_len}", exc) from exc


def del_route(ipr: IPRoute, r: RouteState, index: int) -> None:
    try:
        ipr.route("del", **_route_args(r, index))
    except NetlinkError as exc:
        if exc.code not in (errno.ESRCH, errno.ENODEV):
            raise _fail(f"delete route to {r.dst or 'default'}/{r.dst_len}", exc) from exc


def add_addr(ipr: IPRoute, a: AddrState, index: int) -> None:
    args: dict[str, Any] = {"index": index, "address": a.address, "prefixlen": a.prefixlen}
    if a.broadcast:
        args["broadcast"] = a.broadcast
    try:
        ipr.addr("add", family=a.family, **args)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _fail(f"add address {a.address}/{a.prefixlen}", exc) from exc


def del_addr(ipr: IPRoute, a: AddrState, index: int) -> None:
    try:
        ipr.addr("del", index=index, family=a.family, address=a.address, prefixlen=a.prefixlen)
    except NetlinkError as exc:
        if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
            raise _fail(f"remove address {a.address}/{a.prefixlen}", exc) from exc


def create_bridge(ipr: IPRoute, name: str, mac: str | None, mtu: int) -> int:
    """A new, up Linux bridge (STP off, no forward delay, so a port forwards at once)."""
    args: dict[str, Any] = {"ifname": name, "kind": "bridge", "mtu": mtu, "br_forward_delay": 0}
    if mac:
        args["address"] = mac
    try:
        ipr.link("add", **args)
    except NetlinkError as exc:
        raise _fail(f"create bridge {name}", exc) from exc
    index: int = ipr.link_lookup(ifname=name)[0]
    ipr.link("set", index=index, state="up")
    return index


def set_master(ipr: IPRoute, index: int, master: int) -> None:
    """Enslave (master > 0) or release (master 0) a link."""
    try:
        ipr.link("set", index=index, master=master)
    except NetlinkError as exc:
        raise _fail("set the bridge master" if master else "release from its bridge", exc) from exc


def bridge_ports(ipr: IPRoute, index: int) -> list[str]:
    return [
        m.get_attr("IFLA_IFNAME") for m in ipr.get_links() if m.get_attr("IFLA_MASTER") == index
    ]


def create_vlan(ipr: IPRoute, name: str, parent: int, vlan_id: int) -> int:
    try:
        ipr.link("add", ifname=name, kind="vlan", link=parent, vlan_id=vlan_id)
    except NetlinkError as exc:
        err = _fail(f"create VLAN interface {name}", exc)
        if exc.code == errno.EOPNOTSUPP:
            err.hint = "this kernel has no 802.1Q support (modprobe 8021q)"
        raise err from exc
    index: int = ipr.link_lookup(ifname=name)[0]
    ipr.link("set", index=index, state="up")
    return index


def set_alias(ipr: IPRoute, index: int, alias: str) -> None:
    try:
        ipr.link("set", index=index, ifalias=alias)
    except NetlinkError as exc:
        raise _fail(f"set the alias of link {index}", exc) from exc


def add_macvlan(
    ipr: IPRoute,
    name: str,
    parent: int,
    mode: str,
    mac: str | None = None,
    netns_path: str | Path | None = None,
) -> None:
    """A macvlan child of parent, born directly in netns_path when given (named `name` there)."""
    args: dict[str, Any] = {"ifname": name, "kind": "macvlan", "link": parent, "macvlan_mode": mode}
    if mac:
        args["address"] = mac
    fd = os.open(netns_path, os.O_RDONLY) if netns_path else None
    if fd is not None:
        args["net_ns_fd"] = fd
    try:
        ipr.link("add", **args)
    except NetlinkError as exc:
        raise _fail(f"create macvlan {name}", exc) from exc
    finally:
        if fd is not None:
            os.close(fd)


def add_veth_to_bridge(
    ipr: IPRoute,
    host_ifname: str,
    bridge: int,
    netns_path: str | Path,
    ifname: str,
    mac: str,
    mtu: int,
) -> None:
    fd = os.open(netns_path, os.O_RDONLY)
    try:
        ipr.link(
            "add",
            ifname=host_ifname,
            kind="veth",
            mtu=mtu,
            master=bridge,
            state="up",
            peer={"ifname": ifname, "net_ns_fd": fd, "address": mac, "mtu": mtu},
        )
    except NetlinkError as exc:
        raise _fail(f"create veth {host_ifname}", exc) from exc
    finally:
        os.close(fd)


def configure_inside(
    netns_path: str | Path,
    ifname: str,
    addresses: Sequence[IPv4Interface | IPv6Interface],
    gateways: Sequence[IPv4Address | IPv6Address],
) -> None:
    """Bring ifname up in the namespace, add the addresses, and make the gateways (one per
    family) the default routes."""
    with ipr_in(netns_path) as inner:
        index = inner.link_lookup(ifname=ifname)[0]
        inner.link("set", index=index, state="up")
        lo = inner.link_lookup(ifname="lo")
        if lo:
            inner.link("set", index=lo[0], state="up")
        for address in addresses:
            extra = {}
            if address.version == 4:
                extra["broadcast"] = str(address.network.broadcast_address)
            inner.addr(
                "add",
                index=index,
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
                **extra,
            )
        for gateway in gateways:
            default = "0.0.0.0/0" if gateway.version == 4 else "::/0"
            inner.route("replace", dst=default, gateway=str(gateway), oif=index)


def link_exists_in(netns_path: str | Path, ifname: str) -> bool:
    with ipr_in(netns_path) as inner:
        return bool(inner.link_lookup(ifname=ifname))


def delete_link_in(netns_path: str | Path, ifname: str) -> None:
    with ipr_in(netns_path) as inner:
        found = inner.link_lookup(ifname=ifname)
        if found:
            try:
                inner.link("del", index=found[0])
            except NetlinkError as exc:
                if exc.code not in (errno.ENODEV, errno.ENOENT):
                    raise _fail(f"delete {ifname} in the container", exc) from exc


# -- ARP ------------------------------------------------------------------------------------------
def _packet_socket_in(netns_path: str | Path | None) -> socket.socket:
    def work() -> socket.socket:
        if netns_path is not None:
            fd = os.open(netns_path, os.O_RDONLY)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), f"setns({netns_path})")
            finally:
                os.close(fd)
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))

    try:
        return _in_thread(work)
    except OSError as exc:
        raise KernelError(f"open an ARP socket: {exc.strerror or exc}") from exc


def _arp_frame(op: int, src_mac: bytes, sender: IPv4Address, target: IPv4Address) -> bytes:
    eth = b"\xff" * 6 + src_mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
    arp += src_mac + sender.packed + b"\x00" * 6 + target.packed
    return eth + arp


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def arp_probe(
    netns_path: str | Path | None, ifname: str, mac: str, ip: IPv4Address, wait: float = 0.6
) -> str | None:
    """RFC 5227 probe (sender 0.0.0.0) for ip on ifname: the MAC of whoever answers, or None."""
    sock = _packet_socket_in(netns_path)
    try:
        sock.bind((ifname, ETH_P_ARP))
        frame = _arp_frame(1, _mac_bytes(mac), IPv4Address("0.0.0.0"), ip)
        for _ in range(3):  # three probes, a third of the wait apart (lost frames happen)
            sock.send(frame)
            deadline = time.monotonic() + wait / 3
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                data = sock.recv(128)
                if len(data) < 42 or struct.unpack("!H", data[20:22])[0] != 2:
                    continue
                if data[28:32] == ip.packed:  # a reply whose sender is the address we want
                    return ":".join(f"{b:02x}" for b in data[22:28])
        return None
    finally:
        sock.close()


def gratuitous_arp(netns_path: str | Path | None, ifname: str, mac: str, ip: IPv4Address) -> None:
    """Announce ip at mac (a request and a reply, both broadcast), so neighbours update caches."""
    sock = _packet_socket_in(netns_path)
    try:
        sock.bind((ifname, ETH_P_ARP))
        sock.send(_arp_frame(1, _mac_bytes(mac), ip, ip))
        sock.send(_arp_frame(2, _mac_bytes(mac), ip, ip))
    except OSError as exc:
        raise KernelError(f"send gratuitous ARP on {ifname}: {exc.strerror or exc}") from exc
    finally:
        sock.close()


def link_mac_in(netns_path: str | Path, ifname: str) -> str:
    with ipr_in(netns_path) as inner:
        return str(inner.get_links(inner.link_lookup(ifname=ifname)[0])[0].get_attr("IFLA_ADDRESS"))
