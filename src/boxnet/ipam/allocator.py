"""Address management: subnets for new networks, addresses for endpoints. Pure functions, generic
over the address family (ipaddress.ip_network): IPv4 and IPv6 subnets, ranges, gateways and
auxiliary addresses follow the same rules, except what differs by nature (an IPv4 subnet's
broadcast address is reserved; IPv6 has none).

Reservations themselves live in the store (UNIQUE per network and address); these functions only
choose, given what is taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from boxnet.errors import Conflict, InvalidArgument

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

# Docker's default pools (IPv4 by nature: 172.17/16 is docker0's).
DEFAULT_POOLS: tuple[tuple[IPv4Network, int], ...] = (
    (IPv4Network("172.17.0.0/16"), 16),
    (IPv4Network("172.18.0.0/16"), 16),
    (IPv4Network("172.19.0.0/16"), 16),
    (IPv4Network("172.20.0.0/14"), 16),
    (IPv4Network("172.24.0.0/14"), 16),
    (IPv4Network("172.28.0.0/14"), 16),
    (IPv4Network("192.168.0.0/16"), 20),
)


def ula_pool(seed: str) -> tuple[IPv6Network, int]:
    """The IPv6 pool of `--ipv6` networks without a subnet: a unique local /48 (RFC 4193,
    fd00::/8 with a 40-bit Global ID) cut into /64s, as Docker 27+ does. The Global ID is a hash
    of `seed` (the daemon's data root and the host's machine id) rather than random, so it is the
    same after a restart and differs between hosts. See docs/CHOICES.md "IPv6"."""
    global_id = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:5], "big")
    base = IPv6Network(((0xFD << 120) | (global_id << 80), 48))
    return base, 64


@dataclass(frozen=True)
class Occupant:
    """Something that already uses address space: a network of ours or a host route/address."""

    network: IPNetwork
    what: str


def candidate_subnets(pools: Iterable[tuple[IPNetwork, int]]) -> Iterator[IPNetwork]:
    for base, size in pools:
        if size < base.prefixlen:
            yield base
        else:
            yield from base.subnets(new_prefix=size)


def _span(n: IPNetwork) -> tuple[int, int, int]:
    """(family, first, last) as integers: pick_subnet compares candidates with every occupant,
    and ipaddress's overlaps() made that ~1,000 object-building calls per network create with
    100 networks in place (a few ms); integer bounds make each check two comparisons."""
    return n.version, int(n.network_address), int(n.broadcast_address)


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    (va, first_a, last_a), (vb, first_b, last_b) = _span(a), _span(b)
    return va == vb and first_a <= last_b and first_b <= last_a


def pick_subnet(
    pools: Iterable[tuple[IPNetwork, int]], occupied: list[Occupant]
) -> tuple[IPNetwork, list[str]]:
    """First pool subnet that overlaps nothing; returns it and why earlier ones were skipped."""
    skipped: list[str] = []
    families: set[int] = set()
    spans = [(*_span(o.network), o) for o in occupied]
    for subnet in candidate_subnets(pools):
        families.add(subnet.version)
        version, first, last = _span(subnet)
        clash = next(
            (o for v, lo, hi, o in spans if v == version and lo <= last and first <= hi), None
        )
        if clash is None:
            return subnet, skipped
        if len(skipped) < 64:
            skipped.append(f"{subnet} overlaps {clash.what} ({clash.network})")
    family = "IPv6" if families == {6} else "IPv4"
    raise Conflict(
        f"could not find an available, non-overlapping {family} address pool among the defaults"
        " to assign to the network",
        hint="pass --subnet explicitly, remove unused networks (boxnet network prune), or add"
        " pools with default-address-pools in daemon.json",
    )


def check_subnet_free(subnet: IPNetwork, occupied: list[Occupant]) -> None:
    for o in occupied:
        if _overlap(o.network, subnet):
            raise Conflict(
                f"invalid pool request: Pool overlaps with other one on this address space:"
                f" {subnet} overlaps {o.what} ({o.network})",
                hint="choose another --subnet",
            )


def check_pool(
    subnet: IPNetwork, ip_range: IPNetwork | None, aux_addresses: dict[str, str]
) -> None:
    """The dynamic range and the auxiliary (reserved) addresses must lie inside the subnet."""
    if ip_range is not None and not (
        ip_range.version == subnet.version and ip_range.subnet_of(subnet)  # type: ignore[arg-type]
    ):
        raise InvalidArgument(f"invalid --ip-range {ip_range}: not inside {subnet}")
    for name, addr in aux_addresses.items():
        if ip_address(addr) not in subnet:
            raise InvalidArgument(f"invalid --aux-address {name}={addr}: not inside {subnet}")


def check_gateway(subnet: IPNetwork, gateway: IPAddress) -> None:
    """A gateway is a host address of its subnet (not the network or broadcast address)."""
    if gateway not in subnet or gateway in _unusable(subnet):
        raise InvalidArgument(
            f"invalid gateway {gateway}: it must be a host address inside {subnet}"
        )


def first_host(subnet: IPNetwork) -> IPAddress:
    return subnet.network_address + 1 if subnet.num_addresses > 2 else subnet.network_address


def _unusable(subnet: IPNetwork) -> set[IPAddress]:
    """What no endpoint may have: in IPv4 the network and broadcast addresses; in IPv6 the
    subnet-router anycast address (the network address) unless the subnet is a /127 or /128."""
    if subnet.version == 4:
        return {subnet.network_address, subnet.broadcast_address}
    return {subnet.network_address} if subnet.num_addresses > 2 else set()


def reserved_addresses(
    subnet: IPNetwork, gateway: IPAddress | None, aux: Iterable[str]
) -> set[IPAddress]:
    taken = _unusable(subnet)
    if gateway is not None:
        taken.add(gateway)
    taken.update(ip_address(a) for a in aux)
    return taken


class Unavailable:
    """The union of a few address sets, read in place: copying the leases of 1,000 containers
    into one set on every start grew with the population."""

    def __init__(self, *parts: AbstractSet[IPAddress]) -> None:
        self.parts = parts

    def __contains__(self, ip: object) -> bool:
        return any(ip in part for part in self.parts)

    def __len__(self) -> int:  # an upper bound (the parts may overlap): what pick_address needs
        return sum(len(part) for part in self.parts)


def pick_address(
    subnet: IPNetwork,
    ip_range: IPNetwork | None,
    unavailable: AbstractSet[IPAddress] | Unavailable,
    start_at: int | None = None,
) -> IPAddress:
    """Lowest free address of the dynamic range (the whole subnet without --ip-range).
    start_at: an address (as an int) below which every address of the range is known to be
    taken, so that the scan does not walk over the 1,000 leases below it on every start."""
    pool = ip_range or subnet
    start = int(pool.network_address)
    end = int(pool.broadcast_address)
    if pool.num_addresses > 2 or pool == subnet:
        start += 1 if pool.network_address == subnet.network_address else 0
    if start_at is not None and start < start_at <= end:
        start = start_at
    last = subnet.broadcast_address if subnet.version == 4 else None
    make = type(subnet.network_address)
    # Bounded by the pool and by what is taken, whatever the size of an IPv6 range: the first
    # free address is at most len(unavailable) + 2 steps in (+1 for the IPv4 broadcast).
    for value in range(start, min(end, start + len(unavailable) + 2) + 1):
        candidate = make(value)
        if candidate not in unavailable and candidate != last:
            return candidate
    family = f"IPv{subnet.version}"
    raise Conflict(
        f"no available {family} addresses on this network's address pools: {pool} is exhausted",
        hint="remove stopped containers or create the network with a larger --subnet/--ip-range",
    )


def check_static_address(
    ip: IPAddress, subnet: IPNetwork, gateway: IPAddress | None, aux: Iterable[str]
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
