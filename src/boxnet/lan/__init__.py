"""LAN attachment (issue 6, tutorial §3.2): host bridges on a NIC and pipework (the macvlan driver
is in drivers/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.lan import recovery
from boxnet.lan.hostbridge import HostBridges
from boxnet.lan.pipework import Pipework
from boxnet.store.lan_records import LanRecords

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.paths import Paths
    from boxnet.store.db import Store
    from boxnet.store.intents import Intent, Intents


class Lan:
    def __init__(self, ipr: IPRoute, store: Store, paths: Paths, intents: Intents) -> None:
        self.records = LanRecords(store)
        self.hostbridges = HostBridges(ipr, self.records, intents)
        self.pipework = Pipework(ipr, self.records, paths.data_root / "lan", intents)

    def resolve(self, intent: Intent) -> str:
        """Finish or undo a LAN change a crash cut short (lan/recovery.py)."""
        return recovery.resolve(self, intent)

    def collect_garbage(self, present: frozenset[str]) -> list[str]:
        return recovery.collect(self, present)
