"""The composition root: builds every manager once and knows the start-up order."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from boxnet.core.containers import Containers
from boxnet.core.networks import Networks
from boxnet.core.reconcile import FirewallGuard, collect_garbage
from boxnet.core.sandbox import Sandboxes
from boxnet.kernel import links
from boxnet.store.db import Store
from boxnet.store.records import Records

if TYPE_CHECKING:
    from boxnet.config import DaemonConfig
    from boxnet.firewall.base import FirewallBackend
    from boxnet.paths import Paths

log = logging.getLogger("boxnet.controller")


def make_firewall(config: DaemonConfig) -> FirewallBackend | None:
    if not config.iptables:
        return None
    if config.firewall_backend == "iptables":
        from boxnet.errors import InvalidArgument

        raise InvalidArgument(
            "firewall backend iptables is not available yet", hint="use nftables (the default)"
        )
    from boxnet.firewall.nftables import NftablesBackend

    return NftablesBackend()


class Controller:
    def __init__(self, paths: Paths, config: DaemonConfig) -> None:
        from pyroute2 import IPRoute

        self.paths = paths
        self.config = config
        self.lock = threading.RLock()
        self.store = Store(paths.db)
        self.records = Records(self.store)
        self.ipr = IPRoute()
        self.firewall = make_firewall(config)
        self.networks = Networks(self.records, self.ipr, self.firewall, config)
        self.sandboxes = Sandboxes(paths, self.records, self.networks, self.ipr, self.firewall)
        self.containers = Containers(
            paths, self.records, self.networks, self.sandboxes, config, self.lock
        )
        self.firewall_guard = FirewallGuard(self)

    def start(self) -> None:
        """Bring the kernel in line with the configuration and the records."""
        with self.lock:
            if self.config.ip_forward:
                links.set_sysctl("net/ipv4/ip_forward", "1")
            self.networks.ensure_predefined()
            self.networks.sync_firewall()
            adopted, ended = self.containers.adopt()
            if adopted or ended:
                log.info("restart: adopted %d running containers, %d had ended", adopted, ended)
            collect_garbage(self)
        self.firewall_guard.start()

    def close(self) -> None:
        self.firewall_guard.stop()
        self.ipr.close()
        self.store.close()
