"""Make the kernel match the records: garbage collection, firewall reload, flush detection.

Only objects carrying boxnet's prefixes are considered, and of those only the ones no record
owns are removed ("cleanup by records, not by broad name matching"). Everything is best effort
and idempotent: one failure is reported and the rest still runs.

Changes cut short by a crash are resolved first, from the intent journal (store/intents.py): LAN
changes by their own recovery (lan/recovery.py), whose undo data nothing in the kernel keeps;
the core changes' rows only say what was in flight, since their records are the intent and the
collection below finishes or undoes them; network create/rm are finished or undone by core's
networks from the planned network their row carries. Each driver collects its own kernel objects
(NetworkDriver.collect) and repairs its own endpoints (NetworkDriver.repair).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from boxnet.core import removal
from boxnet.kernel import links, netns
from boxnet.model import Container, State

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.core.dockeripam import DockerIpam
    from boxnet.core.external import ExternalAttachments
    from boxnet.core.networks import Networks
    from boxnet.firewall.base import FirewallBackend
    from boxnet.lan import Lan
    from boxnet.paths import Paths
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.reconcile")

FIREWALL_CHECK_SECONDS = 2.0


@dataclass
class GcReport:
    removed: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {
            "Resolved": self.resolved,
            "Removed": self.removed,
            "Released": self.released,
            "Recreated": self.recreated,
            "Problems": self.problems,
        }


class Reconciler:
    """Resolves the journal and collects garbage, over explicit parts (not the controller)."""

    def __init__(
        self,
        records: Records,
        networks: Networks,
        lan: Lan,
        paths: Paths,
        ipr: IPRoute,
    ) -> None:
        self.records = records
        self.networks = networks
        self.lan = lan
        self.paths = paths
        self.ipr = ipr
        # Attachments in namespaces the daemon does not own (core/external.py): kept while
        # their namespace lives. Set by the controller.
        self.external: ExternalAttachments | None = None
        # Docker's IPAM (core/dockeripam.py): its claims no endpoint took expire here; younger
        # ones are an endpoint on its way (RequestAddress comes before CreateEndpoint).
        self.docker_ipam: DockerIpam | None = None

    def resolve_intents(self, report: GcReport) -> None:
        """Finish or undo every change an earlier daemon left half-done, then drop its row.
        Caller holds the controller's lock."""
        for intent in self.records.intents.pending():
            try:
                if intent.kind.startswith(("hostbridge.", "pipework.")):
                    outcome = self.lan.resolve(intent)
                elif intent.kind in ("network.create", "network.rm"):
                    outcome = self.networks.resolve(intent.kind, intent.subject, intent.payload)
                elif intent.kind == "container.rm" and not self.records.container(intent.subject):
                    # rm -f answered; its shim's exit was to remove the rest (core/removal.py)
                    outcome = removal.finish_leftovers(self.paths, intent.subject)
                else:
                    outcome = "left to gc (its records are the intent)"
            except Exception as exc:  # reported; the row goes anyway (retrying cannot help)
                outcome = f"failed: {exc}"
                report.problems.append(f"{intent.describe()}: {exc}")
            self.records.intents.done(intent.id)
            report.resolved.append(f"{intent.describe()}: {outcome}")
            log.warning(
                "interrupted change %s (%s): %s", intent.describe(), intent.created, outcome
            )

    def collect_garbage(self, cluster: bool = True) -> GcReport:
        """Remove kernel objects and reservations that no record owns. Caller holds the lock.
        cluster=False leaves the cluster store alone (daemon start: an unreachable etcd must not
        hold it up; the housekeeping loop's first round does that part)."""
        report = GcReport()
        self.resolve_intents(report)
        records = self.records
        containers = {c.id: c for c in records.containers()}
        running = {cid for cid, c in containers.items() if c.state == State.RUNNING}
        # External attachments own their records like running containers, while their
        # namespace lives; the ones whose namespace is gone are detached here.
        live_external = self.external.sweep(report) if self.external is not None else set()
        running |= live_external

        young: set[str] = set()
        if self.docker_ipam is not None:
            try:
                report.released += self.docker_ipam.expire(cluster)
            except Exception as exc:  # e.g. the cluster store does not answer
                report.problems.append(f"Docker IPAM claims: {exc}")
            young = self.docker_ipam.young()

        # Records first: reservations whose owner is gone or not running.
        for endpoint in records.endpoints():
            if endpoint.container_id not in running:
                records.delete_endpoint(endpoint.id)
                net = self.networks.by_id(endpoint.network_id)
                if net is not None:  # a global network's driver releases its cluster records
                    self.networks.driver_of(net).detached(net, endpoint)
                report.released.append(f"endpoint {endpoint.id[:12]} ({endpoint.primary.ip})")
        ports = records.ports()  # parsed once: ~20 ms with 1,000 published at a daemon start
        for cid, binding, _ip in ports:
            if cid not in running:
                report.released.append(
                    f"port {binding.host_ip}:{binding.host_port}/{binding.proto}"
                )
        for cid in {cid for cid, _b, _ip in ports} - running:
            records.release_ports(cid)
        for cid in records.lease_holders():
            if cid in young:
                continue
            if cid not in containers and cid not in live_external:
                records.release_leases(cid)
                report.released.append(f"addresses of removed container {cid[:12]}")
            elif cid not in running:
                records.release_leases(cid, keep_static=True)

        # Owners without their kernel objects: a running container whose link vanished (a crash
        # in the middle of `network disconnect`, or someone's `ip link del`) gets it back.
        # One dump of the host's links serves the repair and every collector.
        present = links.link_names()
        self._repair(containers, running, report, present)

        # Kernel objects with a driver's prefixes and no owner, driver by driver.
        networks = records.networks()
        endpoints = records.endpoints()
        for driver in self.networks.drivers:
            try:
                report.removed += driver.collect(networks, endpoints, present)
            except Exception as exc:
                report.problems.append(f"{driver.name} driver: {exc}")
        try:
            report.removed += self.lan.collect_garbage(present)
        except Exception as exc:
            report.problems.append(f"pipework: {exc}")
        owned_netns = {self.paths.netns_path(cid).name for cid in running}  # (+ DNS ports)
        if self.paths.netns_dir.is_dir():
            for path in self.paths.netns_dir.iterdir():
                if path.name not in owned_netns:
                    try:
                        netns.delete_netns(path)
                        report.removed.append(f"netns {path.name}")
                    except Exception as exc:
                        report.problems.append(f"netns {path.name}: {exc}")
        if self.paths.dns_ports_dir.is_dir():  # resolver ports of containers that are gone
            for path in self.paths.dns_ports_dir.iterdir():
                if path.name not in owned_netns:
                    path.unlink(missing_ok=True)
        try:
            self.networks.sync_firewall()
        except Exception as exc:
            report.problems.append(f"firewall: {exc}")
        if report.removed or report.released or report.resolved:
            log.info(
                "gc: resolved %s; removed %s; released %s",
                report.resolved,
                report.removed,
                report.released,
            )
        return report

    def _repair(
        self,
        containers: dict[str, Container],
        running: set[str],
        report: GcReport,
        present: frozenset[str],
    ) -> None:
        nets = {n.id: n for n in self.records.networks()}
        for e in self.records.endpoints():
            net = nets.get(e.network_id)
            c = containers.get(e.container_id)
            if e.container_id not in running or c is None or net is None:
                continue
            try:
                done = self.networks.driver_of(net).repair(net, e, c.netns_path, present)
                if done:
                    report.recreated.append(f"{done} of {c.name} on {net.name}")
            except Exception as exc:
                report.problems.append(f"repair {e.ifname} of {c.name} on {net.name}: {exc}")


class FirewallGuard:
    """Rebuilds boxnet's rules when they vanish behind its back (`nft flush ruleset`, a
    firewalld reload): checked every FIREWALL_CHECK_SECONDS, so within seconds, not never.

    Its thread is the daemon's housekeeping loop too: chores (add_chore) run at their own
    period, the first time at once (at daemon start); a chore takes the lock for what needs it."""

    def __init__(
        self, networks: Networks, firewall: FirewallBackend | None, lock: threading.RLock
    ) -> None:
        self.networks = networks
        self.firewall = firewall
        self.lock = lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="boxnet-fwguard", daemon=True)
        self.chores: list[tuple[str, float, Callable[[], object]]] = []

    def add_chore(self, name: str, every: float, work: Callable[[], object]) -> None:
        """work() every `every` seconds (bounded work: the firewall check waits for it)."""
        self.chores.append((name, every, work))

    def start(self) -> None:
        if self.firewall is not None or self.chores:
            self._thread.start()

    def _run_chores(self, due: dict[str, float]) -> None:
        for name, every, work in self.chores:
            now = time.monotonic()
            if now < due.get(name, 0.0):
                continue
            due[name] = now + every
            try:
                work()
            except Exception:
                log.exception("housekeeping: %s failed", name)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        due: dict[str, float] = {}
        self._run_chores(due)
        while not self._stop.wait(FIREWALL_CHECK_SECONDS):
            self._run_chores(due)
            firewall = self.firewall
            if firewall is None:
                continue
            try:
                if not firewall.is_intact():
                    with self.lock:
                        log.warning("boxnet's firewall rules were removed: rebuilding them")
                        self.networks.sync_firewall()
            except Exception:
                log.exception("firewall check failed")
