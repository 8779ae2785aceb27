"""Who may resolve which name: an immutable snapshot, rebuilt on every change and swapped in
whole, so the serving thread reads it without locks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address


@dataclass(frozen=True)
class NameEntry:
    """One endpoint of a running container: its address on one network and the names that
    point at it there (container name, 12-hex short id, that network's aliases)."""

    container_id: str
    network_id: str
    ip: IPv4Address
    names: tuple[str, ...]
    internal: bool = False


def normalise(name: str) -> str:
    return name.rstrip(".").lower()


def reverse_name(ip: IPv4Address) -> str:
    return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa"


class NameTable:
    def __init__(self, entries: Iterable[NameEntry] = ()) -> None:
        # network id -> name -> addresses; network id -> reverse name -> first name
        self._names: dict[str, dict[str, list[IPv4Address]]] = {}
        self._ptr: dict[str, dict[str, str]] = {}
        self._networks: dict[str, set[str]] = {}
        self._outward: dict[str, bool] = {}
        for e in entries:
            names = self._names.setdefault(e.network_id, {})
            for name in e.names:
                addresses = names.setdefault(normalise(name), [])
                if e.ip not in addresses:
                    addresses.append(e.ip)
            if e.names:
                self._ptr.setdefault(e.network_id, {}).setdefault(reverse_name(e.ip), e.names[0])
            self._networks.setdefault(e.container_id, set()).add(e.network_id)
            # One network with a way out is enough for the container to reach the outside
            # anyway; a container only on --internal networks never gets anything forwarded.
            self._outward[e.container_id] = self._outward.get(e.container_id, False) or (
                not e.internal
            )

    def lookup(self, asker: str, qname: str) -> list[IPv4Address] | None:
        """Addresses of qname on the networks asker is on; None when no such name is visible."""
        key = normalise(qname)
        found: list[IPv4Address] = []
        seen = False
        for net in sorted(self._networks.get(asker, ())):
            addresses = self._names.get(net, {}).get(key)
            if addresses is not None:
                seen = True
                found.extend(a for a in addresses if a not in found)
        return found if seen else None

    def reverse(self, asker: str, qname: str) -> str | None:
        key = normalise(qname)
        for net in sorted(self._networks.get(asker, ())):
            name = self._ptr.get(net, {}).get(key)
            if name is not None:
                return name
        return None

    def may_forward(self, asker: str) -> bool:
        """False for a container whose every network is --internal (CVE-2024-29018), and for
        one the table does not know yet: never forward by default."""
        return self._outward.get(asker, False)

    def knows(self, asker: str) -> bool:
        return asker in self._networks
