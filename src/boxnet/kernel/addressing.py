"""Addresses: a link's own (read, added, removed) and what the namespace's addresses and
routes already use (the overlap checks of network create and of the overlay's pools).

Reads go through kernel/dump.py (plain rtnetlink dumps parsed by hand, in the calling thread's
namespace: the daemon's threads never leave theirs); writes through pyroute2's IPRoute.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_interface,
)
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.errors import KernelError
from boxnet.kernel import dump
from boxnet.kernel.links import IPInterface, ipr_in
from boxnet.kernel.links import fail as _fail

# rtnetlink constants (linux/rtnetlink.h): the main table, the universe scope.
RT_TABLE_MAIN, RT_SCOPE_UNIVERSE = 254, 0
# IFA_F_NODAD (linux/if_addr.h): a container's IPv6 address is usable at once, as Docker's is.
IFA_F_NODAD = 0x02

# The two below dump in the calling thread's namespace (kernel/dump.py, filtered by the kernel):
# pyroute2 dumped every address of the host and decoded each before filtering by index, ~33 ms
# for the default bridge at a daemon start with 1,000 veths' link-local addresses. The daemon's
# threads stay in its namespace, where its bridges are.


def addresses(index: int) -> list[IPv4Interface]:
    return [
        IPv4Interface(f"{a.address}/{a.prefixlen}") for a in dump.addresses(socket.AF_INET, index)
    ]


def global_ipv6_addresses(index: int) -> list[IPv6Interface]:
    """The interface's IPv6 addresses but link-local ones (which the kernel manages)."""
    return [
        IPv6Interface(f"{a.address}/{a.prefixlen}")
        for a in dump.addresses(socket.AF_INET6, index)
        if a.scope == RT_SCOPE_UNIVERSE
    ]


def ensure_address(ipr: IPRoute, index: int, iface: IPInterface) -> None:
    # An IPv6 address skips duplicate address detection: a bridge without ports has no carrier,
    # and a tentative gateway would make the first containers' packets wait for DAD.
    extra: dict[str, object] = (
        {"broadcast": str(iface.network.broadcast_address)}
        if iface.version == 4
        else {"flags": IFA_F_NODAD}
    )
    try:
        ipr.addr(
            "add",
            index=index,
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
            **extra,
        )
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _fail(f"add address {iface}", exc) from exc


def add_addresses_in(netns_path: str | Path, ifname: str, addresses: Sequence[str]) -> None:
    """Link-local addresses on a container's interface (/16 for IPv4, /64 for IPv6)."""
    with ipr_in(netns_path) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise KernelError(f"no interface {ifname} in {netns_path}")
        for text in addresses:
            iface = ip_interface(f"{text}/{16 if ':' not in text else 64}")
            ensure_address(ipr, found[0], iface)


def remove_address(ipr: IPRoute, index: int, iface: IPInterface) -> None:
    try:
        ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
            raise _fail(f"remove address {iface}", exc) from exc


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


def local_ipv6_addresses(ipr: IPRoute) -> set[IPv6Address]:
    """Every IPv6 address of the namespace (for publishing on one address)."""
    return {IPv6Address(str(m.get_attr("IFA_ADDRESS"))) for m in ipr.get_addr(family=10)}


@dataclass(frozen=True)
class SpaceUse:
    """An address or a main-table IPv4 route of the namespace, with its interface's name."""

    network: IPv4Network | IPv6Network
    ifname: str
    what: str  # "the address 10.0.0.1/24 of eth0", "a route to 10.1.0.0/16"


def address_space(ipr: IPRoute, ignore: frozenset[str] = frozenset()) -> list[SpaceUse]:
    """What the namespace's addresses and routes already use, for overlap checks: every IPv4
    address, every global IPv6 address (no link-local, no ::1) and every IPv4 route of the
    main table but default and loopback routes; none of the interfaces named in `ignore`
    (the caller's own bridges: skipped before parsing, which was most of the cost at 100)."""
    # Interface names come from the IPv4 addresses' labels; only the few interfaces without
    # one are asked for by index. Dumping every link instead costs ~0.6 ms per link in
    # pyroute2 (200 ms at 300 containers), and one request per route's interface ~0.3 ms
    # per network (a `network create` at 100 networks paid 30 ms for it). The dumps are
    # parsed by kernel/dump.py: through pyroute2 they cost another ~30 ms at 100 networks.
    # They read the calling thread's namespace: the daemon's threads never leave theirs.
    names: dict[int, str] = {}
    v4_found = dump.addresses(socket.AF_INET)
    for a in v4_found:
        if a.label:  # the interface's name (unless renamed since); "eth0:1" for aliases
            names.setdefault(a.index, a.label.split(":", 1)[0])

    def name(index: int | None) -> str:
        if index is None:
            return ""
        if index not in names:
            names[index] = _ifname(ipr, index)
        return names[index]

    v4 = [
        (a.index, IPv4Interface(f"{a.address}/{a.prefixlen}"))
        for a in v4_found
        if name(a.index) not in ignore
    ]
    v6 = [
        (a.index, IPv6Interface(f"{a.address}/{a.prefixlen}"))
        for a in dump.addresses(socket.AF_INET6)
        if a.scope == RT_SCOPE_UNIVERSE and name(a.index) not in ignore
    ]
    routes = []
    for r in dump.ipv4_routes(RT_TABLE_MAIN):
        if not r.dst or (r.oif is not None and name(r.oif) in ignore):  # default route; ours
            continue
        net = IPv4Network(f"{r.dst}/{r.dst_len}", strict=False)
        if net.prefixlen and not net.is_loopback:
            routes.append((r.oif, net))

    uses = [SpaceUse(i.network, name(x), f"the address {i} of {name(x) or '?'}") for x, i in v4]
    uses += [SpaceUse(i.network, name(x), f"the address {i} of {name(x) or '?'}") for x, i in v6]
    uses += [SpaceUse(net, name(x), f"a route to {net}") for x, net in routes]
    return uses
