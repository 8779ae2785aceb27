"""Netlink verbs with no policy: bridges, veth pairs, addresses, routes (pyroute2).

Policy (which address, which bridge) lives above, in core/. Every verb is idempotent where the
kernel lets it be: "already there" on create and "already gone" on delete count as success.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
)
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.errors import KernelError
from boxnet.kernel import ifctl, netns, nlraw
from boxnet.kernel.iproute import OwnedIPRoute
from boxnet.kernel.netns import enable_ipv6, netlink_socket_in

log = logging.getLogger(__name__)

IPInterface = IPv4Interface | IPv6Interface
IPAddress = IPv4Address | IPv6Address


def fail(what: str, exc: NetlinkError) -> KernelError:
    """A KernelError naming what failed, from a netlink error."""
    return KernelError(f"{what}: {os.strerror(exc.code) if exc.code else exc}")


_fail = fail


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
    alias: str = ""  # IFLA_IFALIAS: how boxnet tags links it made under a name not its own


def mac_of(ifname: str) -> str | None:
    """ifname's MAC in the calling thread's namespace (None: no such link), by one ioctl: a
    netlink `link get` through the owner thread costs ~1 ms per CNI ADD (ifctl)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            return ifctl.hwaddr(probe.fileno(), ifname)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise


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
        alias=msg.get_attr("IFLA_IFALIAS") or "",
    )


def link_names() -> frozenset[str]:
    """The names of the calling thread's namespace's links, from libc's if_nameindex (one
    netlink dump parsed in C: ~1 ms for 1,000 links, where pyroute2 decodes every attribute of
    every link, ~0.4 ms each). Garbage collection picks candidates by name from this and asks
    for the details of those alone."""
    return frozenset(name for _index, name in socket.if_nameindex())


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
                alias=msg.get_attr("IFLA_IFALIAS") or "",
            )
        )
    return out


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


def retire_link(
    ipr: IPRoute, ifname: str, then: Callable[[str], None] = lambda _name: None
) -> None:
    """Delete a link of the daemon's namespace later, on the daemon's slow netlink lane
    (kernel.iproute.OwnedIPRoute.defer, keyed by the name: settle(ifname) waits for it), and
    call then(ifname) once it is gone, or failed (logged), or was missing already. Nothing on
    the caller's path takes the kernel's routing lock (RTNL): the deletion holds it ~20-40 ms
    on a bridge of 1,000 ports, and a "down" first would wait behind the previous one's
    (core/leasing.py holds the link's addresses back meanwhile). A plain IPRoute (no slow
    lane) deletes at once."""
    # An ioctl on a socket of the calling thread (the daemon's threads stay in its namespace),
    # lockless in the kernel: is it there at all?
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            index = ifctl.index(sock.fileno(), ifname)
        except OSError:
            then(ifname)
            return  # no such interface

    def done(failure: BaseException | None) -> None:
        gone = isinstance(failure, NetlinkError) and failure.code in (errno.ENODEV, errno.ENOENT)
        if failure is not None and not gone:
            log.warning("delete link %s: %s", ifname, failure)
        then(ifname)

    if isinstance(ipr, OwnedIPRoute):
        ipr.defer(done, "link", "del", index=index, key=ifname)
        return
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        done(exc)
    else:
        done(None)


def await_unlisted(ipr: OwnedIPRoute, ifname: str) -> None:
    """Wait until a link that retire_link queued is out of service: gone from the kernel's
    list of links (what `ip link` shows). The kernel unlists a deleted link within a
    millisecond of the request and only then spends ~20-40 ms in RCU barriers before `link
    del` returns; by the time it unlists, it has closed every device of the deletion (both
    ends of a veth): neither sends, receives nor answers ARP. Asked with a lockless ioctl
    (no RTNL); bounded by the deletion itself (settle returns once it is done or failed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

        def unlisted() -> bool:
            try:
                ifctl.index(sock.fileno(), ifname)
            except OSError:
                return True
            return False

        if not unlisted():
            ipr.settle(ifname, until=unlisted)


def set_hairpin(ifname: str) -> None:
    """Let the bridge send a frame back out of the port it came in on (bridge_slave hairpin).
    ifname is a port in the daemon's own namespace (whose threads never leave it): one request
    from the calling thread (nlraw), found by name."""
    try:
        nlraw.set_hairpin(ifname)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            raise KernelError(f"hairpin mode on {ifname}: no such interface") from exc
        raise _fail(f"hairpin mode on {ifname}", exc) from exc
    except OSError as exc:  # the netlink socket itself
        raise KernelError(f"hairpin mode on {ifname}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class VethPlan:
    host_ifname: str
    container_ifname: str
    mac: str
    mtu: int
    bridge_index: int
    addresses: tuple[IPInterface, ...]  # one per family
    gateways: tuple[IPAddress, ...]  # default routes via these, per family (() = none)


def _address_and_route(
    index: int, addresses: tuple[IPInterface, ...], gateways: tuple[IPAddress, ...]
) -> list[nlraw.Message]:
    """The addresses and default routes of an interface as requests for one netlink batch (one
    round trip instead of one per request: what `ip addr add` and `ip route add default via`
    send), in each address's own family."""
    return [nlraw.address_message(index, a) for a in addresses] + [
        nlraw.default_route_message(g) for g in gateways
    ]


def add_veth_into(ipr: IPRoute, netns_path: Path, plan: VethPlan) -> None:
    """Create the pair with its peer born inside the container's namespace, plug the host end
    into the bridge, and configure the peer: address, up, default route via the gateway."""
    fd = os.open(netns_path, os.O_RDONLY)
    ipv6 = any(a.version == 6 for a in plan.addresses)
    born_on = False
    try:
        # An IPv6 endpoint's peer is born with IPv6 on (the namespace's default flipped for the
        # one creation, see netns.ipv6_born_on): no thread and setns to turn it on afterwards.
        with netns.ipv6_born_on(netns_path) if ipv6 else nullcontext(False) as born_on:
            nlraw.add_veth(
                plan.host_ifname, plan.container_ifname, fd, plan.mac, plan.mtu, plan.bridge_index
            )
    except NetlinkError as exc:
        raise _veth_failure(plan, exc) from exc
    except OSError as exc:  # the netlink socket itself (nlraw)
        raise KernelError(f"create veth {plan.host_ifname}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    sock = netlink_socket_in(netns_path)
    try:
        # Index and "up" by ioctl on the socket (one syscall each, see ifctl); the address and
        # the route over netlink. lo is up since the namespace was made (netns.create_netns).
        index = ifctl.index(sock.fileno(), plan.container_ifname)
        if ipv6 and not born_on:
            enable_ipv6(netns_path, plan.container_ifname)  # before "up": link-local, then DAD
        ifctl.set_up(sock.fileno(), plan.container_ifname)
        nlraw.request_batch(sock, _address_and_route(index, plan.addresses, plan.gateways))
    except (NetlinkError, OSError) as exc:
        delete_link(ipr, plan.host_ifname)
        what = f"configure {plan.container_ifname} in the container"
        if isinstance(exc, NetlinkError):
            raise _fail(what, exc) from exc
        raise KernelError(f"{what}: {exc.strerror or exc}") from exc
    finally:
        sock.close()


def _veth_failure(plan: VethPlan, exc: NetlinkError) -> KernelError:
    """A failed veth creation, named; a full bridge (the kernel's BR_MAX_PORTS) gets its hint."""
    if exc.code == errno.EXFULL:
        return KernelError(
            f"create veth {plan.host_ifname}: the bridge has no free port (a Linux bridge"
            " takes at most 1023 ports)",
            hint="attach further containers to another network (boxnet network create)",
        )
    return _fail(f"create veth {plan.host_ifname}", exc)


def add_veth_pair(ipr: IPRoute, plan: VethPlan) -> None:
    """Create the pair with both ends here: the host end up on the bridge, the peer down and
    unaddressed, for a runtime to move into its sandbox and configure itself (Docker's remote
    network driver: dockerd moves, renames and addresses it)."""
    try:
        ipr.link(
            "add",
            ifname=plan.host_ifname,
            kind="veth",
            mtu=plan.mtu,
            master=plan.bridge_index,
            state="up",
            peer={"ifname": plan.container_ifname, "address": plan.mac, "mtu": plan.mtu},
        )
    except NetlinkError as exc:
        raise _veth_failure(plan, exc) from exc


def set_sysctl(path: str, value: str) -> None:
    """Write /proc/sys/... in the daemon's own network namespace."""
    with open(f"/proc/sys/{path}", "w") as fh:
        fh.write(value)


def read_sysctl(path: str) -> str:
    with open(f"/proc/sys/{path}") as fh:
        return fh.read().strip()


@dataclass(frozen=True)
class InsideInterface:
    """An interface as seen inside another namespace (CNI CHECK compares it to the records)."""

    ifname: str
    mac: str
    up: bool
    addresses: tuple[str, ...]  # "10.0.0.2/24", both families


def interface_in(netns_path: str | Path, ifname: str) -> InsideInterface | None:
    """ifname inside the namespace at netns_path (None: no such interface)."""
    with ipr_in(netns_path) as inner:
        info = link_info(inner, ifname)
        if info is None:
            return None
        found = [
            f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"
            for msg in inner.get_addr(index=info.index)
        ]
    return InsideInterface(ifname, info.mac, info.up, tuple(found))
