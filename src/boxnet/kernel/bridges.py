"""A network's bridge: made (or brought in line) by network create, taken out of use at once
and deleted later by network rm (the kernel's deletion costs ~40 ms, most of it after the name
is already gone from `ip link`: RCU barriers)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.errors import KernelError
from boxnet.kernel import addressing, links
from boxnet.kernel.iproute import OwnedIPRoute
from boxnet.kernel.links import IPInterface


def ensure_bridge(ipr: IPRoute, name: str, mtu: int) -> tuple[int, bool]:
    """Create the bridge if missing, bring it up; returns its index and whether it is new.
    A bridge of that name still in deferred deletion (delete_bridge_later) is waited for."""
    if isinstance(ipr, OwnedIPRoute):  # the daemon's (tests may pass a plain IPRoute)
        ipr.settle(name)
        created_index = _create_up(ipr, name, mtu)
        if created_index is not None:
            return created_index, True
    info = links.link_info(ipr, name)
    created = info is None
    if info is None:
        try:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise links.fail(f"create bridge {name}", exc) from exc
        info = links.link_info(ipr, name)
        if info is None:
            raise KernelError(f"create bridge {name}: it vanished right after creation")
    elif info.kind != "bridge":
        raise KernelError(
            f"create bridge {name}: a {info.kind or 'non-bridge'} interface has that name",
            hint="remove it or choose another bridge name",
        )
    if not info.up:
        ipr.link("set", index=info.index, state="up")
    return info.index, created


def _create_up(ipr: IPRoute, name: str, mtu: int) -> int | None:
    """The common case, a name no link has: the bridge made up in one request, its index by
    ioctl (the daemon's threads never leave its namespace), instead of a lookup, the add, a
    second lookup and "up" (four round trips through the netlink owner thread, ~3 ms at 100
    networks). None when the name exists (or appeared meanwhile): the caller looks closer."""
    try:
        socket.if_nametoindex(name)
        return None
    except OSError:
        pass
    try:
        ipr.link("add", ifname=name, kind="bridge", mtu=mtu, state="up")
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return None
        raise links.fail(f"create bridge {name}", exc) from exc
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise KernelError(f"create bridge {name}: it vanished right after creation") from None


def delete_bridge_later(
    ipr: IPRoute,
    ifname: str,
    addresses: Sequence[IPInterface],
    then: Callable[[BaseException | None], None],
) -> None:
    """Take the bridge out of use now: down (its routes go, and its IPv6 addresses) and without
    its `addresses` (~1 ms); its deletion (~40 ms: RCU barriers in the kernel) is queued on the
    daemon's slow netlink lane (kernel.iproute.OwnedIPRoute.defer), pending under its name. So
    the subnet is free at once, for a new bridge and the overlap check's dumps alike, and the
    name once the deletion ran (ensure_bridge waits for it). `then(error or None)` runs in the
    lane's thread once the link is gone."""
    try:
        index = socket.if_nametoindex(ifname)  # one ioctl: the daemon's threads stay home
    except OSError:
        then(None)  # already gone
        return
    try:
        ipr.link("set", index=index, state="down")
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise links.fail(f"set bridge {ifname} down", exc) from exc
    for iface in addresses:
        addressing.remove_address(ipr, index, iface)

    def done(failure: BaseException | None) -> None:
        if isinstance(failure, NetlinkError) and failure.code in (errno.ENODEV, errno.ENOENT):
            failure = None
        elif isinstance(failure, NetlinkError):
            failure = links.fail(f"delete link {ifname}", failure)
        then(failure)

    ipr.defer(done, "link", "del", index=index, key=ifname)
