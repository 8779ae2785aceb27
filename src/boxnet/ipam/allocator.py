"""Address management: subnets for new networks, addresses for endpoints. Pure functions.

Reservations themselves live in the store (UNIQUE per network and address); these functions only
choose, given what is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from boxnet.errors import Conflict, InvalidArgument

DEFAULT_POOLS: tuple[tuple[IPv4Network, int], ...] = (
    (IPv4Network("172.17.0.0/16"), 16),
    (IPv4Network("172.18.0.0/16"), 16),
    (IPv4Network("172.19.0.0/16"), 16),
    (IPv4Network("172.20.0.0/14"), 16),
    (IPv4Network("172.24.0.0/14"), 16),
    (IPv4Network("172.28.0.0/14"), 16),
    (IPv4Network("192.168.0.0/16"), 20),
)


@dataclass(frozen=True)
class Occupant:
    """Something that already uses address space: a network of ours or a host route/address."""

    network: IPv4Network
    what: str


def candidate_subnets(pools: Iterable[tuple[IPv4Network, int]]) -> Iterator[IPv4Network]:
    for base, size in pools:
        if size < base.prefixlen:
            yield base
        else:
            yield from base.subnets(new_prefix=size)


def pick_subnet(
    pools: Iterable[tuple[IPv4Network, int]], occupied: list[Occupant]
) -> tuple[IPv4Network, list[str]]:
    """First pool subnet that overlaps nothing; returns it and why earlier ones were skipped."""
    skipped: list[str] = []
    for subnet in candidate_subnets(pools):
        clash = next((o for o in occupied if o.network.overlaps(subnet)), None)
        if clash is None:
            return subnet, skipped
        if len(skipped) < 64:
            skipped.append(f"{subnet} overlaps {clash.what} ({clash.network})")
    raise Conflict(
        "could not find an available, non-overlapping IPv4 address pool among the defaults"
        " to assign to the network",
        hint="pass --subnet explicitly, remove unused networks (boxnet network prune), or add"
        " pools with default-address-pools in daemon.json",
    )


def check_subnet_free(subnet: IPv4Network, occupied: list[Occupant]) -> None:
    for o in occupied:
        if o.network.overlaps(subnet):
            raise Conflict(
                f"invalid pool request: Pool overlaps with other one on this address space:"
                f" {subnet} overlaps {o.what} ({o.network})",
                hint="choose another --subnet",
            )


def check_pool(
    subnet: IPv4Network, ip_range: IPv4Network | None, aux_addresses: dict[str, str]
) -> None:
    """The dynamic range and the auxiliary (reserved) addresses must lie inside the subnet."""
    if ip_range is not None and not ip_range.subnet_of(subnet):
        raise InvalidArgument(f"invalid --ip-range {ip_range}: not inside {subnet}")
    for name, addr in aux_addresses.items():
        if IPv4Address(addr) not in subnet:
            raise InvalidArgument(f"invalid --aux-address {name}={addr}: not inside {subnet}")


def first_host(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1 if subnet.num_addresses > 2 else subnet.network_address


def reserved_addresses(
    subnet: IPv4Network, gateway: IPv4Address | None, aux: Iterable[str]
) -> set[IPv4Address]:
    taken = {subnet.network_address, subnet.broadcast_address}
    if gateway is not None:
        taken.add(gateway)
    taken.update(IPv4Address(a) for a in aux)
    return taken


def pick_address(
    subnet: IPv4Network,
    ip_range: IPv4Network | None,
    unavailable: set[IPv4Address],
) -> IPv4Address:
    """Lowest free address of the dynamic range (the whole subnet without --ip-range)."""
    pool = ip_range or subnet
    start = int(pool.network_address)
    end = int(pool.broadcast_address)
    if pool.num_addresses > 2 or pool == subnet:
        start += 1 if pool.network_address == subnet.network_address else 0
    for value in range(start, end + 1):
        candidate = IPv4Address(value)
        if candidate not in unavailable and candidate != subnet.broadcast_address:
            return candidate
    raise Conflict(
        f"no available IPv4 addresses on this network's address pools: {pool} is exhausted",
        hint="remove stopped containers or create the network with a larger --subnet/--ip-range",
    )


def check_static_address(
    ip: IPv4Address, subnet: IPv4Network, gateway: IPv4Address | None, aux: Iterable[str]
) -> None:
    if ip not in subnet:
        raise InvalidArgument(
            f"invalid address {ip}: it is not in the network's subnet {subnet}",
            hint=f"choose an address inside {subnet}",
        )
    if ip in reserved_addresses(subnet, gateway, aux):
        raise InvalidArgument(
            f"invalid address {ip}: it is reserved (network, broadcast, gateway or auxiliary"
            " address)"
        )
