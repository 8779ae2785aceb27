"""Overlay network definitions shared by every host: /boxnet/networks/<name> (JSON).

`create` claims a VNI and a subnet (cluster.allocate), then the name with a create transaction:
two hosts creating the same name at once get one network, and the loser gives its claims back.
`NetworkWatcher` keeps a host's view current: it lists the prefix, then watches from the
revision it listed at; when the stream ends or the store stops answering it lists again (bounded
backoff), so a host that was cut off catches up on what it missed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network

from boxnet.cluster import allocate
from boxnet.cluster.store import KEY_ROOT, ClusterStore, ClusterStoreError, KeyValue
from boxnet.errors import Conflict, NotFound, Unavailable

NETWORKS_PREFIX = f"{KEY_ROOT}networks/"
log = logging.getLogger("boxnetd.cluster")


@dataclass(frozen=True)
class OverlayNetwork:
    id: str
    name: str
    subnet: str  # CIDR
    gateway: str  # first host address: every host's bridge carries it (the local gateway)
    vni: int
    created_by: str  # advertise address of the host that created it
    created: str = ""  # RFC 3339, as `network inspect` shows it on every host
    attachable: bool = False
    internal: bool = False

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> OverlayNetwork:
        data = json.loads(raw)
        required = ("id", "name", "subnet", "gateway", "vni", "created_by")
        optional = ("created", "attachable", "internal")  # absent in older records
        return cls(
            **{name: data[name] for name in required},
            **{name: data[name] for name in optional if name in data},
        )


def _decode(kv: KeyValue) -> OverlayNetwork | None:
    try:
        return OverlayNetwork.from_json(kv.value)
    except (ValueError, KeyError, TypeError):
        log.warning("cluster store: %s is not an overlay network record; ignored", kv.key)
        return None


def create_network(
    store: ClusterStore,
    network_id: str,
    name: str,
    created_by: str,
    pools: Sequence[tuple[IPv4Network, int]],
    subnet: IPv4Network | None = None,
    created: str = "",
    attachable: bool = False,
    internal: bool = False,
    avoid: Sequence[IPv4Network] = (),
) -> OverlayNetwork:
    """Claim VNI, subnet and name for a new overlay network; nothing claimed is left on failure."""
    if store.get(f"{NETWORKS_PREFIX}{name}") is not None:
        raise Conflict(f"network with name {name} already exists in the cluster")
    owner = f"{name}/{network_id}"
    vni = allocate.claim_vni(store, owner)
    try:
        claimed = allocate.claim_subnet(store, owner, pools, subnet, avoid)
    except BaseException:
        allocate.release_vni(store, vni)
        raise
    gateway = str(next(claimed.hosts()))
    net = OverlayNetwork(
        network_id, name, str(claimed), gateway, vni, created_by, created, attachable, internal
    )
    won = False
    try:
        won = store.create(f"{NETWORKS_PREFIX}{name}", net.to_json())
    finally:
        if not won:  # lost the name to another host, or the store failed: give the claims back
            allocate.release_subnet(store, claimed)
            allocate.release_vni(store, vni)
    if not won:
        raise Conflict(f"network with name {name} already exists in the cluster")
    return net


def remove_network(store: ClusterStore, name: str) -> OverlayNetwork:
    kv = store.get(f"{NETWORKS_PREFIX}{name}")
    net = _decode(kv) if kv is not None else None
    if kv is None or net is None:
        raise NotFound(f"overlay network {name} not found in the cluster")
    store.delete(kv.key)
    addresses, _ = store.get_prefix(f"{allocate.IP_PREFIX}{net.id}/")
    for address in addresses:
        store.delete(address.key)
    allocate.release_subnet(store, IPv4Network(net.subnet))
    allocate.release_vni(store, net.vni)
    return net


def find_network(store: ClusterStore, name: str) -> OverlayNetwork | None:
    kv = store.get(f"{NETWORKS_PREFIX}{name}")
    return _decode(kv) if kv is not None else None


def list_networks(store: ClusterStore) -> tuple[dict[str, OverlayNetwork], int]:
    kvs, revision = store.get_prefix(NETWORKS_PREFIX)
    found = {kv.key.removeprefix(NETWORKS_PREFIX): _decode(kv) for kv in kvs}
    return {name: net for name, net in found.items() if net is not None}, revision


class NetworkWatcher:
    """Calls on_change(every overlay network by name) at start and after each change."""

    def __init__(
        self,
        store: ClusterStore,
        on_change: Callable[[dict[str, OverlayNetwork]], None],
        max_delay: float = 5.0,
    ) -> None:
        self.store = store
        self.on_change = on_change
        self.max_delay = max_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="overlay-networks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current wait (a watch blocked on a quiet store ends with the daemon)."""
        self._stop.set()

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                view, revision = list_networks(self.store)
                self.on_change(dict(view))
                for event in self.store.watch(NETWORKS_PREFIX, revision + 1):
                    name = event.key.removeprefix(NETWORKS_PREFIX)
                    if event.kind == "delete":
                        view.pop(name, None)
                    else:
                        try:
                            view[name] = OverlayNetwork.from_json(event.value)
                        except (ValueError, KeyError, TypeError):
                            continue
                    self.on_change(dict(view))
                    if self._stop.is_set():
                        return
                delay = 0.2
            except (Unavailable, ClusterStoreError, OSError) as err:
                log.warning("cluster store: watching networks: %s; retrying", err)
            self._stop.wait(delay)
            delay = min(delay * 2, self.max_delay)
