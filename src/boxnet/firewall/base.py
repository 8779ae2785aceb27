"""Backend-neutral firewall intents, and the contract every backend implements.

The core never writes rules: it says what must hold (this bridge masquerades, this host port leads
to that container port) and a backend renders it, each change as one atomic batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Protocol

ANY_IP = IPv4Address("0.0.0.0")


@dataclass(frozen=True)
class BridgeIntent:
    """One bridge network as the firewall sees it."""

    bridge: str
    subnet: IPv4Network | IPv6Network  # either family
    masquerade: bool
    internal: bool
    icc: bool


@dataclass(frozen=True)
class DnatIntent:
    """Traffic to host_ip:host_port/proto goes to container_ip:container_port.

    host_ip 0.0.0.0 means every local address. A loopback host_ip is reachable only from the
    host's own processes (never from a neighbour: see the nftables backend).
    """

    host_ip: IPv4Address
    proto: str
    host_port: int
    container_ip: IPv4Address
    container_port: int

    @property
    def is_loopback(self) -> bool:
        return self.host_ip.is_loopback


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
    """The DNATs a backend has programmed, oldest first. `is_intact` checks one of them (the
    probe) instead of listing them all: a flushed map or chain loses it along with the rest."""

    def __init__(self) -> None:
        self._items: dict[DnatIntent, None] = {}

    def reset(self, dnats: Iterable[DnatIntent]) -> None:
        self._items = dict.fromkeys(dnats)

    def add(self, dnats: Iterable[DnatIntent]) -> None:
        self._items.update(dict.fromkeys(dnats))

    def remove(self, dnats: Iterable[DnatIntent]) -> None:
        for d in dnats:
            self._items.pop(d, None)

    def probe(self) -> DnatIntent | None:
        return next(iter(self._items), None)
