"""Overlay endpoints shared by every host: /boxnet/endpoints/<network id>/<endpoint id> (JSON).

Each host publishes its own endpoints under its membership lease, so a host that dies takes its
endpoints with it when the lease runs out. `EndpointWatcher` turns the store into calls a host
acts on: `on_add(record)` for a remote endpoint that appeared (or changed) and `on_remove(record)`
for one that went, by diffing successive views of the prefix; after an outage it lists again and
the diff catches up with whatever it missed (added, changed or expired meanwhile).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

from boxnet.cluster.store import KEY_ROOT, ClusterStore, KeyValue
from boxnet.errors import BoxnetError

ENDPOINTS_PREFIX = f"{KEY_ROOT}endpoints/"
log = logging.getLogger("boxnetd.cluster")


@dataclass(frozen=True)
class EndpointRecord:
    network_id: str
    endpoint_id: str
    vni: int
    ip: str
    mac: str
    host: str  # advertise address of the host the endpoint lives on
    container_id: str = ""
    names: tuple[str, ...] = ()  # its DNS names on the network (name, short id, aliases)

    @property
    def key(self) -> str:
        return f"{ENDPOINTS_PREFIX}{self.network_id}/{self.endpoint_id}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> EndpointRecord:
        data = json.loads(raw)
        return cls(
            network_id=str(data["network_id"]),
            endpoint_id=str(data["endpoint_id"]),
            vni=int(data["vni"]),
            ip=str(data["ip"]),
            mac=str(data["mac"]),
            host=str(data["host"]),
            container_id=str(data.get("container_id", "")),
            names=tuple(str(n) for n in data.get("names", ())),
        )


def publish_endpoint(store: ClusterStore, record: EndpointRecord, lease: int) -> None:
    store.put(record.key, record.to_json(), lease=lease)


def withdraw_endpoint(store: ClusterStore, record: EndpointRecord) -> None:
    store.delete(record.key)


def diff(
    old: dict[str, EndpointRecord], new: dict[str, EndpointRecord]
) -> tuple[list[EndpointRecord], list[EndpointRecord]]:
    """(added or changed, removed or replaced) between two views keyed by store key."""
    added = [rec for key, rec in new.items() if old.get(key) != rec]
    removed = [rec for key, rec in old.items() if new.get(key) != rec]
    return added, removed


class EndpointWatcher:
    """Calls on_remove/on_add for the endpoints of other hosts (local_host's own are skipped)."""

    def __init__(
        self,
        store: ClusterStore,
        local_host: str,
        on_add: Callable[[EndpointRecord], None],
        on_remove: Callable[[EndpointRecord], None],
        max_delay: float = 5.0,
        on_list: Callable[[list[KeyValue]], None] | None = None,
    ) -> None:
        self.store = store
        self.local_host = local_host
        self.on_add = on_add
        self.on_remove = on_remove
        self.max_delay = max_delay
        # Every (re)list, all hosts' records included: the owner re-publishes what it misses.
        self.on_list = on_list
        self.view: dict[str, EndpointRecord] = {}  # what on_add has been told, by key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="overlay-endpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _remote(self, raw: bytes) -> EndpointRecord | None:
        try:
            record = EndpointRecord.from_json(raw)
        except (ValueError, KeyError, TypeError):
            return None
        return None if record.host == self.local_host else record

    def _apply(self, new: dict[str, EndpointRecord]) -> None:
        added, removed = diff(self.view, new)
        for record in removed:
            self.on_remove(record)
        for record in added:
            self.on_add(record)
        self.view = new

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                kvs, revision = self.store.get_prefix(ENDPOINTS_PREFIX)
                if self.on_list is not None:
                    self.on_list(kvs)
                listed = {kv.key: self._remote(kv.value) for kv in kvs}
                self._apply({key: rec for key, rec in listed.items() if rec is not None})
                for event in self.store.watch(ENDPOINTS_PREFIX, revision + 1):
                    new = dict(self.view)
                    record = self._remote(event.value) if event.kind == "put" else None
                    if record is None:
                        new.pop(event.key, None)
                    else:
                        new[event.key] = record
                    self._apply(new)
                    if self._stop.is_set():
                        return
                delay = 0.2
            except (BoxnetError, OSError) as err:
                # The store went away, or programming the kernel failed: list again and let the
                # diff against the last applied view redo what is missing.
                log.warning("overlay endpoints: %s; retrying", err)
            self._stop.wait(delay)
            delay = min(delay * 2, self.max_delay)
