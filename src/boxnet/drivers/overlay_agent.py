"""The overlay driver's agent: this host's side of the cluster store, in background threads.

- Publishes this host's endpoints under its membership lease (they expire with a dead host) and
  publishes them again after each new lease and at each relist (a put that failed during an
  outage is made when the store answers again); withdrawals that failed are retried the same way.
- Watches the other hosts' endpoints (cluster.endpoints.EndpointWatcher) and programs each as an
  FDB entry (MAC -> remote VTEP) and a permanent neighbour entry (IP -> MAC) on vx-<vni>; removes
  them when the record goes (withdrawn, or its host's lease expired). The kernel keeps what was
  programmed while the store is away, so existing traffic flows through an outage.
- Feeds core the cluster's networks (cluster.networks.NetworkWatcher -> DriverHost.sync_networks)
  and the names of remote containers (DriverHost.remote_names) for the embedded resolver.
"""

from __future__ import annotations

import logging
import queue
import threading
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from boxnet.cluster import allocate
from boxnet.cluster.endpoints import EndpointRecord, EndpointWatcher
from boxnet.cluster.networks import NetworkWatcher, OverlayNetwork
from boxnet.cluster.store import ClusterStoreError, KeyValue
from boxnet.dns import NameEntry
from boxnet.errors import BoxnetError, Unavailable
from boxnet.kernel import links, vxlan

if TYPE_CHECKING:
    from boxnet.drivers.base import ClusterEnv, DriverEnv, DriverHost
    from boxnet.drivers.overlay import OverlayDriver

log = logging.getLogger("boxnet.drivers.overlay")


class OverlayAgent:
    def __init__(self, env: DriverEnv) -> None:
        assert env.cluster is not None
        self.cluster: ClusterEnv = env.cluster
        self.ipr = env.ipr
        self.lock = threading.RLock()
        self.local: dict[str, EndpointRecord] = {}  # this host's endpoints, by store key
        self.remote: dict[str, EndpointRecord] = {}  # other hosts' endpoints as programmed
        self.pending: set[str] = set()  # keys to delete once the store answers again
        # vni -> vx-<vni>'s ifindex: a netlink lookup per remote endpoint event costs CPU that
        # every host spends on every record.
        self._indexes: dict[int, int] = {}
        self.host: DriverHost | None = None
        self.driver: OverlayDriver | None = None
        self._networks: NetworkWatcher | None = None
        self._endpoints: EndpointWatcher | None = None
        # Writes of this host's records, in order, off the attach path: ("put" | "delete", key).
        self._writes: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        threading.Thread(target=self._write_loop, name="overlay-writes", daemon=True).start()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, host: DriverHost, driver: OverlayDriver) -> None:
        self.host, self.driver = host, driver
        with self.lock:
            for net, endpoint, names in host.local_endpoints(driver.name):
                record = driver._record(net, endpoint, names)
                self.local[record.key] = record
        membership = self.cluster.membership
        membership.on_join.append(self._on_join)
        if membership.lease:  # joined before we subscribed
            self._on_join(membership.lease)
        store = self.cluster.store
        self._networks = NetworkWatcher(store, self._on_networks)
        self._endpoints = EndpointWatcher(
            store, str(self.cluster.advertise), self._on_add, self._on_remove,
            on_list=self._on_list,
        )  # fmt: skip
        self._networks.start()
        self._endpoints.start()

    def stop(self) -> None:
        for watcher in (self._networks, self._endpoints):
            if watcher is not None:
                watcher.stop()
        if self._on_join in self.cluster.membership.on_join:
            self.cluster.membership.on_join.remove(self._on_join)

    # -- this host's endpoints ------------------------------------------------------------------
    def publish(self, record: EndpointRecord) -> None:
        """Publish record (in the writer thread: a write to etcd costs a raft round and an
        fsync, which the container's start does not wait for)."""
        with self.lock:
            self.local[record.key] = record
            self.pending.discard(record.key)
        self._writes.put(("put", record.key))

    def take_mac(self, record: EndpointRecord) -> None:
        """record is local now: its address (so its MAC) may have been a remote endpoint's a
        moment ago, whose withdrawal has not reached this host yet."""
        with self.lock:
            index = self._vxlan_index(record.vni)
            if index is not None:
                vxlan.forget_remote_mac(self.ipr, index, record.mac)

    def withdraw(self, record: EndpointRecord, release_ip: bool) -> None:
        with self.lock:
            self.local.pop(record.key, None)
        self._writes.put(("delete", record.key))
        if release_ip:
            self._writes.put(("delete", f"{allocate.IP_PREFIX}{record.network_id}/{record.ip}"))

    def _write_loop(self) -> None:
        while True:
            op, key = self._writes.get()
            if op == "put":
                with self.lock:
                    record = self.local.get(key)
                if record is not None:  # else withdrawn meanwhile
                    self._put(record, self.cluster.membership.lease)
                continue
            try:
                self.cluster.store.delete(key)
            except (Unavailable, ClusterStoreError) as err:
                log.warning("overlay: cannot delete %s now (%s); later", key, err.message)
                with self.lock:
                    self.pending.add(key)

    def _put(self, record: EndpointRecord, lease: int) -> None:
        if not lease:
            return  # not joined yet: _on_join publishes it
        try:
            self.cluster.store.put(record.key, record.to_json(), lease=lease)
        except (Unavailable, ClusterStoreError) as err:
            log.warning("overlay: cannot publish %s now (%s); later", record.key, err.message)

    def _on_join(self, lease: int) -> None:
        """A new lease: every record held by the old one is gone (or going)."""
        with self.lock:
            for record in list(self.local.values()):
                self._put(record, lease)

    def _on_list(self, kvs: list[KeyValue]) -> None:
        """At each relist: publish what is missing, delete what could not be deleted."""
        lease = self.cluster.membership.lease
        present = {kv.key: kv for kv in kvs}
        with self.lock:
            for key, record in list(self.local.items()):
                kv = present.get(key)
                if kv is None or kv.lease != lease or kv.value != record.to_json():
                    self._put(record, lease)
            for key in list(self.pending):
                self.cluster.store.delete(key)  # an outage raises: the watcher lists again
                self.pending.discard(key)

    # -- other hosts' endpoints -----------------------------------------------------------------
    def _vxlan_index(self, vni: int) -> int | None:
        index = self._indexes.get(vni)
        if index is None:
            info = links.link_info(self.ipr, vxlan.vxlan_name(vni))
            if info is None or info.kind != "vxlan":
                return None
            index = self._indexes[vni] = info.index
        return index

    def _program(self, record: EndpointRecord) -> None:
        index = self._vxlan_index(record.vni)
        if index is None:
            return  # the network is not made here yet: program_network does it then
        try:
            vxlan.add_remote_endpoint(
                self.ipr, index, record.mac, IPv4Address(record.ip), IPv4Address(record.host)
            )
        except BoxnetError:
            self._indexes.pop(record.vni, None)  # maybe made again since: look it up anew
            raise

    def forget_network(self, vni: int) -> None:
        """vx-<vni> is being deleted: its index must not be used again."""
        with self.lock:
            self._indexes.pop(vni, None)

    def program_network(self, network_id: str, vni: int) -> None:
        """The network was just made on this host: program the remote endpoints known so far."""
        with self.lock:
            self._indexes.pop(vni, None)  # a device made again has a new index
            for record in list(self.remote.values()):
                if record.network_id == network_id and record.vni == vni:
                    self._program(record)

    def _on_add(self, record: EndpointRecord) -> None:
        with self.lock:
            self.remote[record.key] = record
            self._program(record)
        log.info("overlay: %s on %s (%s) is reachable", record.ip, record.host, record.mac)
        self._names(record.container_id)

    def _on_remove(self, record: EndpointRecord) -> None:
        with self.lock:
            self.remote.pop(record.key, None)
            index = self._vxlan_index(record.vni)
            # Another endpoint may hold the address now (re-claimed): keep its entry then.
            reused = any(r.vni == record.vni and r.ip == record.ip for r in self.remote.values())
            if index is not None and not reused:
                vxlan.remove_remote_endpoint(
                    self.ipr, index, record.mac, IPv4Address(record.ip), IPv4Address(record.host)
                )
        log.info("overlay: %s on %s is gone", record.ip, record.host)
        self._names(record.container_id)

    def _names(self, container_id: str) -> None:
        if self.host is None or not container_id:
            return
        with self.lock:
            entries = [
                NameEntry(container_id, r.network_id, IPv4Address(r.ip), r.names)
                for r in self.remote.values()
                if r.container_id == container_id and r.names
            ]
        self.host.remote_names(container_id, entries)

    # -- networks -------------------------------------------------------------------------------
    def _on_networks(self, view: dict[str, OverlayNetwork]) -> None:
        if self.host is None or self.driver is None:
            return
        try:
            nets = [self.driver.from_record(record) for record in view.values()]
            self.host.sync_networks(self.driver.name, nets)
        except (BoxnetError, OSError) as err:  # the next change (or relist) tries again
            log.warning("overlay: adopting the cluster's networks: %s", err)
