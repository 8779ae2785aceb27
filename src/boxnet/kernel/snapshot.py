"""What the kernel really holds in the daemon's namespace, for the topology page (read only).

One link dump and one address dump (two netlink requests, whatever the number of containers):
every link with its kind, its master bridge, its veth peer's ifindex and whether that peer lives
in another namespace, its IPv4 addresses, and (for explain) its global IPv6 ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyroute2 import IPRoute


@dataclass(frozen=True)
class KernelLink:
    index: int
    name: str
    kind: str  # "bridge", "veth", "macvlan", "" for a physical NIC or lo
    master: str | None  # the bridge it is a port of
    up: bool
    addresses: tuple[str, ...] = ()  # "IP/PREFIX"
    peer_index: int | None = None  # IFLA_LINK: a veth's peer, a macvlan's parent
    peer_elsewhere: bool = False  # the peer lives in another namespace (IFLA_LINK_NETNSID)
    # Not link-local: explain's "is it the host's" (the page lists IPv4 ones only)
    addresses6: tuple[str, ...] = ()


@dataclass(frozen=True)
class KernelSnapshot:
    links: tuple[KernelLink, ...]

    def by_name(self) -> dict[str, KernelLink]:
        return {link.name: link for link in self.links}


def take(ipr: IPRoute) -> KernelSnapshot:
    raw = list(ipr.get_links())
    names = {msg["index"]: str(msg.get_attr("IFLA_IFNAME")) for msg in raw}
    addresses: dict[int, list[str]] = {}
    addresses6: dict[int, list[str]] = {}
    for msg in ipr.get_addr():  # both families, one dump
        if msg["family"] == 10 and msg["scope"] == 253:  # RT_SCOPE_LINK: fe80::/10
            continue
        into = addresses if msg["family"] == 2 else addresses6
        into.setdefault(msg["index"], []).append(
            f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"
        )
    links = []
    for msg in raw:
        info = msg.get_attr("IFLA_LINKINFO")
        master = msg.get_attr("IFLA_MASTER")
        links.append(
            KernelLink(
                index=msg["index"],
                name=names[msg["index"]],
                kind=str((info.get_attr("IFLA_INFO_KIND") if info else "") or ""),
                master=names.get(master) if master else None,
                up=bool(msg["flags"] & 1),
                addresses=tuple(addresses.get(msg["index"], ())),
                addresses6=tuple(addresses6.get(msg["index"], ())),
                peer_index=msg.get_attr("IFLA_LINK"),
                peer_elsewhere=msg.get_attr("IFLA_LINK_NETNSID") is not None,
            )
        )
    return KernelSnapshot(tuple(links))
