"""Netlink verbs with no policy: bridges, veth pairs, addresses, routes (pyroute2).

Policy (which address, which bridge) lives above, in core/. Every verb is idempotent where the
kernel lets it be: "already there" on create and "already gone" on delete count as success.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.errors import KernelError
from boxnet.kernel.netns import netlink_socket_in

# The kernel gives lo ifindex 1 in every namespace (LOOPBACK_IFINDEX): no lookup needed.
LOOPBACK_IFINDEX = 1


def _fail(what: str, exc: NetlinkError) -> KernelError:
    return KernelError(f"{what}: {os.strerror(exc.code) if exc.code else exc}")


@contextmanager
def ipr_in(netns_path: str | Path) -> Iterator[IPRoute]:
    """An IPRoute whose socket lives in another namespace; closed on exit (so the netns can die)."""
    sock = netlink_socket_in(netns_path)
    ipr = IPRoute(fileno=sock.detach())
    try:
        yield ipr
    finally:
        ipr.close()


@dataclass(frozen=True)
class LinkInfo:
    index: int
    ifname: str
    kind: str
    master: int | None
    up: bool
    mac: str


def link_info(ipr: IPRoute, ifname: str) -> LinkInfo | None:
    try:
        found = ipr.link("get", ifname=ifname)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise _fail(f"look up link {ifname}", exc) from exc
    msg = found[0]
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo else ""
    return LinkInfo(
        index=msg["index"],
        ifname=ifname,
        kind=kind or "",
        master=msg.get_attr("IFLA_MASTER"),
        up=bool(msg["flags"] & 1),
        mac=msg.get_attr("IFLA_ADDRESS") or "",
    )


def list_links(ipr: IPRoute) -> list[LinkInfo]:
    out = []
    for msg in ipr.get_links():
        linkinfo = msg.get_attr("IFLA_LINKINFO")
        kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo else ""
        out.append(
            LinkInfo(
                index=msg["index"],
                ifname=msg.get_attr("IFLA_IFNAME"),
                kind=kind or "",
                master=msg.get_attr("IFLA_MASTER"),
                up=bool(msg["flags"] & 1),
                mac=msg.get_attr("IFLA_ADDRESS") or "",
            )
        )
    return out


def ensure_bridge(ipr: IPRoute, name: str, mtu: int) -> int:
    """Create the bridge if missing, bring it up; returns its index."""
    info = link_info(ipr, name)
    if info is None:
        try:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _fail(f"create bridge {name}", exc) from exc
        info = link_info(ipr, name)
        if info is None:
            raise KernelError(f"create bridge {name}: it vanished right after creation")
    elif info.kind != "bridge":
        raise KernelError(
            f"create bridge {name}: a {info.kind or 'non-bridge'} interface has that name",
            hint="remove it or choose another bridge name",
        )
    if not info.up:
        ipr.link("set", index=info.index, state="up")
    return info.index


def delete_link(ipr: IPRoute, ifname: str) -> None:
    try:
        ipr.link("del", ifname=ifname)
    except NetlinkError as exc:
        if exc.code not in (errno.ENODEV, errno.ENOENT):
            raise _fail(f"delete link {ifname}", exc) from exc


def delete_link_in(netns_path: str | Path, ifname: str) -> None:
    """Delete ifname inside another namespace (a veth's peer goes with it; macvlans too)."""
    with ipr_in(netns_path) as inner:
        delete_link(inner, ifname)


def set_hairpin(ipr: IPRoute, ifname: str, index: int | None = None) -> None:
    """Let the bridge send a frame back out of the port it came in on (bridge_slave hairpin).
    `index`, when the caller knows it, saves a lookup."""
    try:
        ipr.brport("set", index=index or ipr.link_lookup(ifname=ifname)[0], mode=1)
    except (NetlinkError, IndexError) as exc:
        if isinstance(exc, NetlinkError):
            raise _fail(f"hairpin mode on {ifname}", exc) from exc
        raise KernelError(f"hairpin mode on {ifname}: no such interface") from exc


def addresses(ipr: IPRoute, index: int) -> list[IPv4Interface]:
    out = []
    for msg in ipr.get_addr(index=index, family=2):
        out.append(IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"))
    return out


def ensure_address(ipr: IPRoute, index: int, iface: IPv4Interface) -> None:
    try:
        ipr.addr(
            "add",
            index=index,
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
            broadcast=str(iface.network.broadcast_address),
        )
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _fail(f"add address {iface}", exc) from exc


def remove_address(ipr: IPRoute, index: int, iface: IPv4Interface) -> None:
    try:
        ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
            raise _fail(f"remove address {iface}", exc) from exc


def ipv4_routes(ipr: IPRoute) -> list[tuple[IPv4Network, str]]:
    """(destination, output interface) of the main table's IPv4 routes (for overlap checks)."""
    # Names only for the few output interfaces: dumping every link costs ~0.6 ms per link
    # in pyroute2, i.e. 200 ms at 300 containers.
    names: dict[int, str] = {}
    out = []
    for msg in ipr.get_routes(family=2, table=254):
        dst = msg.get_attr("RTA_DST")
        if dst is None:
            continue
        index = msg.get_attr("RTA_OIF")
        if index is not None and index not in names:
            names[index] = _ifname(ipr, index)
        out.append((IPv4Network(f"{dst}/{msg['dst_len']}", strict=False), names.get(index, "")))
    return out


def _ifname(ipr: IPRoute, index: int) -> str:
    try:
        return str(ipr.get_links(index)[0].get_attr("IFLA_IFNAME"))
    except (NetlinkError, IndexError):
        return ""


def all_ipv4_addresses(ipr: IPRoute) -> list[tuple[str, IPv4Interface]]:
    """(ifname, address) for every IPv4 address in the namespace."""
    out = []
    for msg in ipr.get_addr(family=2):
        iface = IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
        # IPv4 addresses carry their interface's name as label (unless renamed since).
        label = msg.get_attr("IFA_LABEL") or _ifname(ipr, msg["index"]) or "?"
        out.append((str(label).split(":", 1)[0], iface))
    return out


@dataclass(frozen=True)
class VethPlan:
    host_ifname: str
    container_ifname: str
    mac: str
    mtu: int
    bridge_index: int
    address: IPv4Interface
    gateway: IPv4Address | None
    default_route: bool


def add_veth_into(ipr: IPRoute, netns_path: Path, plan: VethPlan) -> int:
    """Create the pair with its peer born inside the container's namespace, plug the host end
    into the bridge, and configure the peer: address, up, default route via the gateway.
    Returns the host end's ifindex (the peer's IFLA_LINK: no lookup among the host's links)."""
    fd = os.open(netns_path, os.O_RDONLY)
    try:
        ipr.link(
            "add",
            ifname=plan.host_ifname,
            kind="veth",
            mtu=plan.mtu,
            master=plan.bridge_index,
            state="up",
            peer={
                "ifname": plan.container_ifname,
                "net_ns_fd": fd,
                "address": plan.mac,
                "mtu": plan.mtu,
            },
        )
    except NetlinkError as exc:
        if exc.code == errno.EXFULL:  # the kernel's bridge port limit (BR_MAX_PORTS = 1024)
            raise KernelError(
                f"create veth {plan.host_ifname}: the bridge has no free port (a Linux bridge"
                " takes at most 1023 ports)",
                hint="attach further containers to another network (boxnet network create)",
            ) from exc
        raise _fail(f"create veth {plan.host_ifname}", exc) from exc
    finally:
        os.close(fd)
    try:
        with ipr_in(netns_path) as inner:
            peer = inner.link("get", ifname=plan.container_ifname)[0]
            index = peer["index"]
            inner.addr(
                "add",
                index=index,
                address=str(plan.address.ip),
                prefixlen=plan.address.network.prefixlen,
                broadcast=str(plan.address.network.broadcast_address),
            )
            inner.link("set", index=index, state="up")
            # lo is brought up here too: one socket into the namespace per attach, not two.
            inner.link("set", index=LOOPBACK_IFINDEX, state="up")
            if plan.default_route and plan.gateway is not None:
                inner.route("add", dst="0.0.0.0/0", gateway=str(plan.gateway))
    except NetlinkError as exc:
        delete_link(ipr, plan.host_ifname)
        raise _fail(f"configure {plan.container_ifname} in the container", exc) from exc
    return int(peer.get_attr("IFLA_LINK"))


def loopback_up(netns_path: Path) -> None:
    with ipr_in(netns_path) as inner:
        inner.link("set", index=LOOPBACK_IFINDEX, state="up")


def set_sysctl(path: str, value: str) -> None:
    """Write /proc/sys/... in the daemon's own network namespace."""
    with open(f"/proc/sys/{path}", "w") as fh:
        fh.write(value)


def read_sysctl(path: str) -> str:
    with open(f"/proc/sys/{path}") as fh:
        return fh.read().strip()
