"""An endpoint's addresses: leased from core's IPAM, and handed out again only once the
interface that held them is gone.

A removed container's host veth is deleted on the daemon's slow netlink lane
(links.retire_link), after `rm` answered: the kernel holds its routing lock for ~20-40 ms per
deletion on a bridge of 1,000 ports, and setting the port down first, as boxnet did, made every
`rm -f` wait behind the previous removal's deletion for that lock (3.3 ms of a 9.4 ms `rm -f`
in boxnetd at N=960, issue #20). Until the deletion is done, the container's interface still
holds its addresses and its kernel still answers ARP for them, so those addresses are
*retiring*. The lease itself is released at once, as before, and allocation does not change
(the lowest free address, or `--ip`); a start that gets a retiring address waits until the
kernel has taken that interface out of service (links.await_unlisted: gone from `ip link`,
~1 ms after the deletion began, not the ~20 ms until `link del` returns), so allocation never
depends on the kernel's timing (docs/CHOICES.md). The records stay
the truth for everything else (`network inspect`; a daemon restart forgets retiring addresses
along with the deletions it never ran: the kernel deletes a veth with its namespace).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from boxnet.errors import Conflict
from boxnet.ipam.allocator import (
    Unavailable,
    check_static_address,
    pick_address,
    reserved_addresses,
)
from boxnet.model import IPAddress, IPAMConfig, Network
from boxnet.txn import Undo

if TYPE_CHECKING:
    from boxnet.store.records import Records


class Retiring:
    """Addresses of interfaces whose deletion is queued: network id -> {address: link name}.
    Written by request threads (hold) and by the slow lane's thread (release): one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, dict[IPAddress, str]] = {}

    def hold(self, network_id: str, addresses: Iterable[IPAddress], link: str) -> None:
        with self._lock:
            held = self._held.setdefault(network_id, {})
            for ip in addresses:
                held[ip] = link

    def release(self, link: str) -> None:
        """The link is gone (or its deletion failed, logged by the caller): its addresses are
        free for anybody."""
        with self._lock:
            for network_id, held in list(self._held.items()):
                for ip in [ip for ip, name in held.items() if name == link]:
                    del held[ip]
                if not held:
                    del self._held[network_id]

    def link_holding(self, network_id: str, ip: IPAddress) -> str | None:
        with self._lock:
            return self._held.get(network_id, {}).get(ip)


class Leases:
    """Core's IPAM for one address family of a network at a time: `--ip`, or the lowest free
    address of the dynamic range; a retiring one only once its old interface is gone."""

    def __init__(self, records: Records, settle: Callable[[str], None] | None) -> None:
        self.records = records
        self.retiring = Retiring()
        # links.await_unlisted(ipr, link name): waits until that link's deferred deletion has
        # taken it out of service (None: the daemon's IPRoute defers nothing, so nothing ever
        # retires for long).
        self._settle = settle

    def _wait_for(self, network_id: str, ip: IPAddress) -> None:
        link = self.retiring.link_holding(network_id, ip)
        if link is not None and self._settle is not None:
            self._settle(link)

    def lease(
        self, owner_id: str, net: Network, cfg: IPAMConfig, wanted: IPAddress | None, undo: Undo
    ) -> IPAddress:
        if wanted is not None:
            check_static_address(wanted, cfg.subnet, cfg.gateway, cfg.aux_addresses.values())
            if not self.records.lease(net.id, wanted, owner_id, static=True):
                raise Conflict(
                    f"Address already in use: {wanted} is taken on network {net.name}",
                    hint="choose another --ip, or leave it out",
                )
            self._wait_for(net.id, wanted)  # a removed container's interface may still hold it
            return wanted
        lost: set[IPAddress] = set()  # lost races with another writer
        reserved = reserved_addresses(cfg.subnet, cfg.gateway, cfg.aux_addresses.values())
        taken = Unavailable(self.records.leased_view(net.id), reserved, lost)
        floor = self.records.lease_floor(net.id, cfg.version)
        while True:
            ip = pick_address(cfg.subnet, cfg.ip_range, taken, start_at=floor)
            if self.records.lease(net.id, ip, owner_id, static=False):
                if not lost:  # ip was the lowest free one: all below it are taken
                    self.records.raise_lease_floor(net.id, cfg.version, int(ip) + 1)
                undo.push("release lease", lambda: self.records.release_leases(owner_id, net.id))
                self._wait_for(net.id, ip)  # the interface that held it last: gone first
                return ip
            lost.add(ip)  # try the next one
