"""The default bridge's addressing (boxnetd's configuration -> its IPAM), for bridge.py.

Pure planning from a PlanContext: which IPv4 address boxnet0 takes when `bip` is not set, and
its IPv6 family when the daemon's `ipv6` is on.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import TYPE_CHECKING

from boxnet.drivers.base import PlanContext
from boxnet.errors import Conflict, InvalidArgument
from boxnet.ipam.allocator import first_host, pick_subnet
from boxnet.model import IPAMConfig, IPNetwork, Network

if TYPE_CHECKING:
    from boxnet.config import DaemonConfig

log = logging.getLogger("boxnet.drivers.bridge")


def free_default_bip(old: Network | None, ctx: PlanContext) -> IPv4Interface:
    """Docker's 172.17.0.1/16 unless the host uses it; then the address the bridge had, else
    the first free subnet of the pools (with a warning naming the clash)."""
    preferred = IPv4Interface("172.17.0.1/16")  # Docker's, IPv4 by nature
    occupied = ctx.occupied()
    if not any(o.network.overlaps(preferred.network) for o in occupied):
        return preferred
    previous = old.family(4) if old is not None else None
    if previous is not None and isinstance(previous.gateway, IPv4Address):
        iface = IPv4Interface(f"{previous.gateway}/{previous.subnet.prefixlen}")
        if not any(o.network.overlaps(iface.network) for o in occupied):
            return iface
    subnet, skipped = pick_subnet(ctx.pools, occupied)
    assert isinstance(subnet, IPv4Network)  # the pools are IPv4
    log.warning(
        "default bridge: 172.17.0.0/16 is in use (%s); using %s instead",
        "; ".join(skipped[:3]),
        subnet,
    )
    return IPv4Interface(f"{first_host(subnet)}/{subnet.prefixlen}")


def default_ipv6(config: DaemonConfig, ctx: PlanContext) -> IPAMConfig:
    """The default bridge's IPv6 family (daemon `ipv6`): bip6's network and address, else
    fixed-cidr-v6 with its first address as gateway, else a /64 of the unique local pool. An
    explicit prefix overlapping the host's addresses, routes or another network is refused by
    name (the config rules cannot see the host)."""
    occupied = ctx.occupied()
    key, subnet, gateway, ip_range = "", None, None, None
    picked: IPNetwork
    if config.bip6 is not None:
        key, subnet, gateway = "bip6", config.bip6.network, config.bip6.ip
        ip_range = config.fixed_cidr_v6
    elif config.fixed_cidr_v6 is not None:
        key, subnet = "fixed-cidr-v6", config.fixed_cidr_v6
    if subnet is not None:
        for o in occupied:
            if _overlaps(o.network, subnet):
                raise Conflict(
                    f"{key} {subnet} ({config.source_of(key)}) overlaps {o.what} ({o.network})",
                    hint=f"choose an IPv6 prefix for the default bridge that the host does not"
                    f" use, or remove {key} (a unique local /64 is picked)",
                )
        picked = subnet
    else:  # the first free /64 of the pool: the same one at every start
        picked, _skipped = pick_subnet(ctx.pools6, occupied)
    gw = gateway or first_host(picked)
    gw6 = config.default_gateway_v6
    if gw6 is not None and gw6 not in picked:
        raise InvalidArgument(
            f"default-gateway-v6 {gw6} ({config.source_of('default-gateway-v6')}) is not inside"
            f" the default bridge's IPv6 subnet {picked}",
            hint="set fixed-cidr-v6 or bip6 to a prefix holding it, or remove default-gateway-v6",
        )
    return IPAMConfig(picked, gw, ip_range)


def _overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)  # type: ignore[arg-type]
