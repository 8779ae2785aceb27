"""Netlink verbs for overlay networks: VXLAN devices, their forwarding (FDB) and neighbour entries.

No policy here (which VNI, which remote): the overlay driver decides from the cluster store. The
devices are made the way flannel and Docker's overlay make them: no multicast group and no
learning (`nolearning`), ARP answered locally from the neighbour table (`proxy`), and every remote
reached through static FDB entries: one all-zeros entry per remote host (broadcast and unknown
unicast go to every host, `bridge fdb append 00:00:00:00:00:00 dst HOST`) plus one entry per
remote endpoint MAC. Verbs are idempotent: "already there" on add, "already gone" on delete.

The bridge does not learn on the VXLAN port either: a remote endpoint's MAC is a static entry of
the bridge's table (`bridge fdb replace MAC dev vx-N master static`), made and removed with the
endpoint. Why: MACs derive from addresses (02:42 + IPv4), so an address freed on one host and
claimed on another comes back with the same MAC; a learned "MAC behind vx-N" entry would outlive
the remote endpoint by the bridge's ageing time (300 s) and swallow the frames meant for the new
local container (the bridge never forwards a frame back out of the port it came in on).
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.errors import KernelError
from boxnet.kernel.links import link_info

VXLAN_PORT = 4789  # IANA's VXLAN port (Linux's default is 8472)
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
VXLAN_PREFIX = "vx-"
ALL_ZEROS_MAC = "00:00:00:00:00:00"
# linux/neighbour.h
NTF_SELF = 0x02
NTF_MASTER = 0x04
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80


def _fail(what: str, exc: NetlinkError) -> KernelError:
    return KernelError(f"{what}: {os.strerror(exc.code) if exc.code else exc}")


def vxlan_name(vni: int) -> str:
    """`vx-<vni>`: at most 3 + 8 digits (VNIs are 24-bit), inside IFNAMSIZ."""
    return f"{VXLAN_PREFIX}{vni}"


@dataclass(frozen=True)
class VxlanPlan:
    vni: int
    local: IPv4Address  # this host's advertised underlay address
    mtu: int  # underlay MTU - VXLAN_OVERHEAD
    master: int  # index of the network's bridge


def ensure_vxlan(ipr: IPRoute, plan: VxlanPlan) -> int:
    """Create vx-<vni> (nolearning, proxy, dstport 4789, local), enslave it, bring it up."""
    name = vxlan_name(plan.vni)
    info = link_info(ipr, name)
    if info is None:
        try:
            ipr.link(
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_id=plan.vni,
                vxlan_local=str(plan.local),
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
                vxlan_proxy=1,
                mtu=plan.mtu,
            )
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _fail(f"create VXLAN device {name}", exc) from exc
        info = link_info(ipr, name)
        if info is None:
            raise KernelError(f"create VXLAN device {name}: it vanished right after creation")
    elif info.kind != "vxlan":
        raise KernelError(
            f"create VXLAN device {name}: a {info.kind or 'non-VXLAN'} interface has that name",
            hint=f"remove it: names starting with {VXLAN_PREFIX} belong to boxnet's overlay",
        )
    try:
        ipr.link("set", index=info.index, master=plan.master, state="up")
        ipr.brport("set", index=info.index, learning=0)
    except NetlinkError as exc:
        raise _fail(f"attach {name} to its bridge", exc) from exc
    return info.index


def _fdb(ipr: IPRoute, command: str, index: int, mac: str, remote: IPv4Address) -> None:
    ipr.fdb(
        command,
        ifindex=index,
        lladdr=mac,
        dst=str(remote),
        flags=NTF_SELF,
        state=NUD_PERMANENT | NUD_NOARP,
    )


def _bridge_entry(ipr: IPRoute, command: str, index: int, mac: str) -> None:
    """The bridge's own (master) entry: frames for mac leave through the VXLAN port."""
    ipr.fdb(command, ifindex=index, lladdr=mac, flags=NTF_MASTER, state=NUD_NOARP)


def forget_remote_mac(ipr: IPRoute, vxlan_index: int, mac: str) -> None:
    """mac is a local endpoint's now: drop a bridge entry sending it out of the VXLAN port (left by
    a remote endpoint whose withdrawal has not reached this host yet). Idempotent."""
    try:
        _bridge_entry(ipr, "del", vxlan_index, mac)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ENODEV):
            raise _fail(f"remove bridge FDB entry {mac}", exc) from exc


def add_remote_host(ipr: IPRoute, vxlan_index: int, remote: IPv4Address) -> None:
    """Flood broadcast and unknown unicast to remote as well (the all-zeros FDB entry)."""
    try:
        _fdb(ipr, "append", vxlan_index, ALL_ZEROS_MAC, remote)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _fail(f"add FDB flood entry to {remote}", exc) from exc


def remove_remote_host(ipr: IPRoute, vxlan_index: int, remote: IPv4Address) -> None:
    try:
        _fdb(ipr, "del", vxlan_index, ALL_ZEROS_MAC, remote)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ENODEV):
            raise _fail(f"remove FDB flood entry to {remote}", exc) from exc


def add_remote_endpoint(
    ipr: IPRoute, vxlan_index: int, mac: str, ip: IPv4Address, remote: IPv4Address
) -> None:
    """A remote endpoint: its MAC lives behind remote (FDB), its IP has that MAC (neighbour,
    permanent: the VXLAN device answers the local containers' ARP for it)."""
    try:
        _fdb(ipr, "replace", vxlan_index, mac, remote)
    except NetlinkError as exc:
        raise _fail(f"add FDB entry {mac} -> {remote}", exc) from exc
    try:
        _bridge_entry(ipr, "replace", vxlan_index, mac)
    except NetlinkError as exc:
        raise _fail(f"add bridge FDB entry {mac} -> VXLAN port", exc) from exc
    try:
        ipr.neigh(
            "replace",
            ifindex=vxlan_index,
            dst=str(ip),
            lladdr=mac,
            family=socket.AF_INET,
            state=NUD_PERMANENT,
        )
    except NetlinkError as exc:
        raise _fail(f"add neighbour entry {ip} -> {mac}", exc) from exc


def remove_remote_endpoint(
    ipr: IPRoute, vxlan_index: int, mac: str, ip: IPv4Address, remote: IPv4Address
) -> None:
    try:
        ipr.neigh("del", ifindex=vxlan_index, dst=str(ip), lladdr=mac, family=socket.AF_INET)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ENODEV):
            raise _fail(f"remove neighbour entry {ip}", exc) from exc
    try:
        _fdb(ipr, "del", vxlan_index, mac, remote)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ENODEV):
            raise _fail(f"remove FDB entry {mac}", exc) from exc
    forget_remote_mac(ipr, vxlan_index, mac)


def underlay_mtu(ipr: IPRoute, local: IPv4Address) -> int:
    """The MTU of the interface that holds local (the VTEP's underlay address)."""
    for msg in ipr.get_addr(family=socket.AF_INET):
        if msg.get_attr("IFA_ADDRESS") == str(local):
            try:
                link = ipr.get_links(msg["index"])[0]
            except NetlinkError as exc:
                raise _fail(f"look up the interface of {local}", exc) from exc
            return int(link.get_attr("IFLA_MTU"))
    raise KernelError(
        f"no interface of this host has the advertise address {local}",
        hint="--cluster-advertise must be an address of this host's underlay interface",
    )


def delete_vxlan(ipr: IPRoute, vni: int) -> None:
    """Remove vx-<vni> (its FDB and neighbour entries go with it). Idempotent."""
    try:
        ipr.link("del", ifname=vxlan_name(vni))
    except NetlinkError as exc:
        if exc.code not in (errno.ENODEV, errno.ENOENT):
            raise _fail(f"delete VXLAN device {vxlan_name(vni)}", exc) from exc
