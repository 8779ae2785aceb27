"""The composition root: builds every manager once and knows the start-up order."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from boxnet.core.containers import Containers
from boxnet.core.networks import Networks
from boxnet.core.reconcile import FirewallGuard, GcReport, Reconciler
from boxnet.core.sandbox import Sandboxes
from boxnet.drivers import DriverEnv, Drivers
from boxnet.kernel import links
from boxnet.lan import Lan
from boxnet.store.db import Store
from boxnet.store.records import Records

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.config import DaemonConfig
    from boxnet.drivers import ClusterEnv
    from boxnet.firewall.base import FirewallBackend
    from boxnet.paths import Paths

log = logging.getLogger("boxnet.controller")
# Network namespaces made ahead for the next starts (kernel/netnspool.py): two cover a start
# while the previous one's replacement is still being made; a burst makes the rest inline.
NETNS_AHEAD = 2


def make_firewall(config: DaemonConfig) -> FirewallBackend | None:
    if not config.iptables:
        return None
    if config.firewall_backend == "iptables":
        from boxnet.firewall.iptables import IptablesBackend

        return IptablesBackend(config.iptables_variant)
    from boxnet.firewall.nftables import NftablesBackend

    return NftablesBackend()


class Controller:
    def __init__(
        self, paths: Paths, config: DaemonConfig, cluster: ClusterEnv | None = None
    ) -> None:
        from boxnet.kernel.iproute import OwnedIPRoute

        self.paths = paths
        self.config = config
        self.lock = threading.RLock()
        self.store = Store(paths.db)
        self.records = Records(self.store)
        self.ipr: IPRoute = OwnedIPRoute()  # type: ignore[assignment]  # duck-typed
        self.firewall = make_firewall(config)
        self.drivers = Drivers(DriverEnv(self.ipr, route_localnet=config.iptables, cluster=cluster))
        self.networks = Networks(self.records, self.ipr, self.firewall, config, self.drivers)
        self.sandboxes = Sandboxes(paths, self.records, self.networks, self.ipr, self.firewall)
        self.containers = Containers(
            paths, self.records, self.networks, self.sandboxes, config, self.lock
        )
        self.firewall_guard = FirewallGuard(self.networks, self.firewall, self.lock)
        self.lan = Lan(self.ipr, self.store, paths, self.records.intents)
        self.reconciler = Reconciler(self.records, self.networks, self.lan, paths, self.ipr)
        self.sandboxes.pipework = self.lan.pipework
        from boxnet.core.sandbox import NETWORK_SOCKETS
        from boxnet.dns.sockets import prebind
        from boxnet.kernel.netnspool import NetnsPool

        # Namespaces made ahead, between starts: the pool's thread waits for the lock to be
        # free; the resolver's sockets and redirect are readied in them too.
        self.sandboxes.netns_pool = NetnsPool(
            NETNS_AHEAD,
            NETWORK_SOCKETS,
            nftables=True,  # the context that installs the resolver's redirect (prebind)
            quiet=self._wait_for_lock,
            readied=prebind,
        )
        from boxnet.core.dnshook import NameService

        self.dns = NameService(self.records, config, paths.dns_ports_dir)
        self.containers.dns = self.dns
        from boxnet.core.external import ExternalAttachments
        from boxnet.store.external_records import ExternalRecords

        # Endpoints in namespaces boxnet does not own (the CNI plugin, core/external.py).
        self.external = ExternalAttachments(
            self.records, self.networks, self.sandboxes, ExternalRecords(self.store), self.ipr
        )
        self.external.dns = self.dns
        self.reconciler.external = self.external
        from boxnet.core.dockerplugin import DockerPlugin
        from boxnet.store.docker_networks import DockerNetworks

        # Docker's remote network driver (api/routes_dockerplugin.py): endpoints handed over.
        self.docker_plugin = DockerPlugin(
            self.external, self.networks, self.sandboxes, self.records, DockerNetworks(self.store)
        )
        self.reconciler.docker_ipam = self.docker_plugin.ipam
        self.events = self.containers.events  # the daemon's one event bus (core/events.py)
        self.ui_url = ""  # the topology page's address when boxnetd runs with --ui

    def start(self) -> None:
        """Bring the kernel in line with the configuration and the records."""
        with self.lock:
            self._leave_netns_out_of_shims()
            if self.config.ip_forward:
                links.set_sysctl("net/ipv4/ip_forward", "1")
            if self.firewall is not None:
                # A restart may have switched backends: the other one's rules must not linger.
                from boxnet.firewall.iptables import purge_other_backend

                purge_other_backend(self.firewall)
            # Changes a crash cut short first: a half-moved host bridge must be whole again
            # before it is re-applied or anything reads the host's addresses.
            self.reconciler.resolve_intents(GcReport())
            self.lan.hostbridges.reapply()  # before anything reads the host's addresses
            self.networks.ensure_predefined()
            if any(n.family(6) for n in self.networks.all()):
                self.networks.enable_ipv6_forwarding()
            self.networks.sync_firewall()
            from boxnet.core.adoption import adopt

            adopted, ended = adopt(self.containers)
            self.containers.restarts.on_daemon_start()
            self.dns.adopt()  # the resolver's sockets died with the previous daemon
            self.external.adopt()
            if adopted or ended:
                log.info("restart: adopted %d running containers, %d had ended", adopted, ended)
            self.reconciler.collect_garbage()
        # Docker IPAM claims no endpoint took (a dockerd that died between RequestAddress and
        # CreateEndpoint): released after their grace period, looked at once at start.
        ipam = self.docker_plugin.ipam
        self.firewall_guard.add_chore(
            "docker-ipam-expiry", ipam.sweep_seconds, lambda: ipam.expire_logged(self.lock)
        )
        self.firewall_guard.start()
        from boxnet.core.clusterhost import ClusterHost

        # Drivers with work beyond this host (overlay: watches of the cluster store).
        host = ClusterHost(self.records, self.networks, self.dns, self.lock, self.external.table)
        self.drivers.start(host)
        if self.sandboxes.netns_pool is not None:
            self.sandboxes.netns_pool.start()

    def _wait_for_lock(self) -> None:
        with self.lock:
            pass

    def _leave_netns_out_of_shims(self) -> None:
        """Containers' shims (forked by the zygote) leave the namespace files out of their mount
        namespaces: copying one per running container made every start slower the more ran."""
        from boxnet.kernel import netns
        from boxnet.runtime import launcher

        where = self.paths.netns_dir
        try:
            if not netns.share_dir(where):
                log.info("%s holds an earlier boxnetd's namespaces: left as is", where)
        except OSError as exc:  # starts work without it, only slower with many containers
            log.warning("namespace directory: %s", exc)
        launcher.ZYGOTE.netns_dir = str(self.paths.netns_dir)

    def close(self) -> None:
        if self.sandboxes.netns_pool is not None:
            self.sandboxes.netns_pool.close()
        self.drivers.stop()
        self.firewall_guard.stop()
        self.containers.restarts.close()
        self.dns.close()
        self.ipr.close()
        self.store.close()
