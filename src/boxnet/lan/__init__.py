"""LAN attachment (issue 6, tutorial §3.2): host bridges on a NIC, pipework, the macvlan driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.lan.hostbridge import HostBridges
from boxnet.lan.pipework import Pipework
from boxnet.store.lan_records import LanRecords

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.paths import Paths
    from boxnet.store.db import Store


class Lan:
    def __init__(self, ipr: IPRoute, store: Store, paths: Paths) -> None:
        self.records = LanRecords(store)
        self.hostbridges = HostBridges(ipr, self.records)
        self.pipework = Pipework(ipr, self.records, paths.data_root / "lan")
