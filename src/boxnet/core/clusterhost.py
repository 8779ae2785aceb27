"""Core's side of drivers whose networks span hosts (drivers.base.DriverHost): the networks other
hosts created become local records (and kernel objects, through the driver's realise), and the
names of containers on other hosts enter the embedded resolver's table.

Called from the drivers' watcher threads: every step takes the controller's lock, as an API
request does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from boxnet.model import Endpoint, Network
from boxnet.txn import Undo

if TYPE_CHECKING:
    from boxnet.core.dnshook import NameService
    from boxnet.core.networks import Networks
    from boxnet.dns import NameEntry
    from boxnet.store.external_records import ExternalRecords
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.cluster")


class ClusterHost:
    def __init__(
        self,
        records: Records,
        networks: Networks,
        dns: NameService,
        lock: threading.RLock,
        external: ExternalRecords | None = None,
    ) -> None:
        self.external = external  # attachments of the plugins (Docker's, CNI's) are local too
        self.records = records
        self.networks = networks
        self.dns = dns
        self.lock = lock

    def sync_networks(self, driver: str, networks: Sequence[Network]) -> None:
        changed = False
        with self.lock:
            local = {n.id: n for n in self.records.networks()}
            wanted = {n.id for n in networks}
            for net in networks:
                if net.id in local:
                    continue
                clash = next((n for n in local.values() if n.name == net.name), None)
                if clash is not None:
                    log.warning(
                        "cluster network %s: a local %s network has that name; not adopted",
                        net.name, clash.driver,
                    )  # fmt: skip
                    continue
                with Undo(f"adopt cluster network {net.name}") as undo:
                    realised = self.networks.driver_of(net).realise(net, undo)
                    self.records.put_network(realised)
                    undo.commit()
                log.info("cluster network %s (%s) adopted", net.name, net.short_id)
                changed = True
            for net in local.values():
                if net.driver != driver or net.id in wanted:
                    continue
                if self.records.endpoints(network_id=net.id):
                    log.warning(
                        "cluster network %s is gone from the store but has local endpoints;"
                        " kept until they leave",
                        net.name,
                    )
                    continue
                self.networks.driver_of(net).delete(net)
                self.records.delete_network(net.id)
                log.info("cluster network %s (%s) removed", net.name, net.short_id)
                changed = True
            if changed:
                self.networks.sync_firewall()

    def local_endpoints(self, driver: str) -> list[tuple[Network, Endpoint, tuple[str, ...]]]:
        with self.lock:
            nets = {n.id: n for n in self.records.networks() if n.driver == driver}
            out = []
            for endpoint in self.records.endpoints():
                net = nets.get(endpoint.network_id)
                if net is None:
                    continue
                c = self.records.container(endpoint.container_id)
                if c is not None:
                    out.append((net, endpoint, (c.name, c.short_id, *endpoint.aliases)))
                    continue
                # A plugin's endpoint: republished after a restart like a container's.
                attached = self.external.get(endpoint.container_id) if self.external else None
                if attached is not None:
                    names = (attached.name, *attached.aliases, *endpoint.aliases)
                    out.append((net, endpoint, tuple(n for n in names if n)))
            return out

    def remote_names(self, container_id: str, entries: Sequence[NameEntry]) -> None:
        with self.lock:
            self.dns.set_remote(container_id, entries)
