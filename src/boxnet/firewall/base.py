"""Backend-neutral firewall intents, and the contract every backend implements.

The core never writes rules: it says what must hold (this bridge masquerades, this host port leads
to that container port) and a backend renders it, each change as one atomic batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Protocol

ANY_IP = IPv4Address("0.0.0.0")
ANY_IP6 = IPv6Address("::")
ANY = (ANY_IP, ANY_IP6)  # "every address" of each family


@dataclass(frozen=True)
class BridgeIntent:
    """One bridge network as the firewall sees it."""

    bridge: str
    subnet: IPv4Network | IPv6Network  # either family
    masquerade: bool
    internal: bool
    icc: bool
    # IPv6 routed mode (gateway_mode_ipv6=routed): no masquerade, and the containers' published
    # ports (their own address and port) are open to routed traffic from outside
    routed: bool = False


@dataclass(frozen=True)
class DnatIntent:
    """Traffic to host_ip:host_port/proto goes to container_ip:container_port.

    host_ip 0.0.0.0 (::) means every local address of that family; host_ip and container_ip
    are of one family. A loopback host_ip is reachable only from the host's own processes (never
    from a neighbour: see the nftables backend). ::1 is not the firewall's at all: the kernel
    cannot route a reply to ::1 that came in on a bridge (no route_localnet for IPv6), so a
    small proxy serves those (firewall/loopback6.py).
    """

    host_ip: IPv4Address | IPv6Address
    proto: str
    host_port: int
    container_ip: IPv4Address | IPv6Address
    container_port: int

    @property
    def is_loopback(self) -> bool:
        return self.host_ip.is_loopback

    @property
    def is_any(self) -> bool:
        return self.host_ip in ANY

    @property
    def version(self) -> int:
        return self.host_ip.version

    @property
    def proxied(self) -> bool:
        """Served by the loopback proxy, not by a DNAT rule."""
        return self.host_ip.version == 6 and self.host_ip.is_loopback


@dataclass(frozen=True)
class FirewallModel:
    bridges: tuple[BridgeIntent, ...]
    dnats: tuple[DnatIntent, ...]


class FirewallBackend(Protocol):
    name: str

    def details(self) -> list[tuple[str, str]]:
        """(label, value) pairs `boxnet info` shows under the backend's name."""

    def rebuild(self, model: FirewallModel) -> None:
        """Replace everything boxnet owns with exactly `model`, atomically."""

    def add_dnats(self, dnats: list[DnatIntent]) -> None:
        """Publish ports (one atomic batch)."""

    def remove_dnats(self, dnats: list[DnatIntent]) -> None:
        """Unpublish ports (one atomic batch); already absent is success."""

    def is_intact(self) -> bool:
        """False when boxnet's rules were removed behind its back (flush, firewall reload)."""

    def teardown(self) -> None:
        """Remove everything boxnet owns."""


class Published:
    """The DNATs a backend has programmed, oldest first. `is_intact` checks one of them per place
    they live (the probes: a map, an address family's chain) instead of listing them all: a
    flushed map or chain loses its probe along with the rest."""

    def __init__(self) -> None:
        self._items: dict[DnatIntent, None] = {}

    def reset(self, dnats: Iterable[DnatIntent]) -> None:
        self._items = dict.fromkeys(d for d in dnats if not d.proxied)

    def add(self, dnats: Iterable[DnatIntent]) -> None:
        self._items.update(dict.fromkeys(d for d in dnats if not d.proxied))

    def remove(self, dnats: Iterable[DnatIntent]) -> None:
        for d in dnats:
            self._items.pop(d, None)

    def probe(self) -> DnatIntent | None:
        return next(iter(self._items), None)

    def probes(self, where: Callable[[DnatIntent], str | int]) -> list[DnatIntent]:
        """The oldest DNAT of each place `where` names (one per map, or per family)."""
        first: dict[str | int, DnatIntent] = {}
        for d in self._items:
            first.setdefault(where(d), d)
        return list(first.values())
