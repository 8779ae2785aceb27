"""Make the kernel match the records: garbage collection, firewall reload, flush detection.

Only objects carrying boxnet's prefixes are considered, and of those only the ones no record
owns are removed ("cleanup by records, not by broad name matching"). Everything is best effort
and idempotent: one failure is reported and the rest still runs.

Changes cut short by a crash are resolved first, from the intent journal (store/intents.py): LAN
changes by their own recovery (lan/recovery.py), whose undo data nothing in the kernel keeps;
the core changes' rows only say what was in flight, since their records are the intent and the
collection below finishes or undoes them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet.kernel import links, netns
from boxnet.model import Container, Driver, State

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

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


def resolve_intents(ctl: Controller, report: GcReport) -> None:
    """Finish or undo every change an earlier daemon left half-done, then drop its row.
    Caller holds ctl.lock."""
    for intent in ctl.records.intents.pending():
        if intent.kind.startswith(("hostbridge.", "pipework.")):
            try:
                outcome = ctl.lan.resolve(intent)
            except Exception as exc:  # reported; the row goes anyway (retrying cannot help)
                outcome = f"failed: {exc}"
                report.problems.append(f"{intent.describe()}: {exc}")
        else:
            outcome = "left to gc (its records are the intent)"
        ctl.records.intents.done(intent.id)
        report.resolved.append(f"{intent.describe()}: {outcome}")
        log.warning("interrupted change %s (%s): %s", intent.describe(), intent.created, outcome)


def collect_garbage(ctl: Controller) -> GcReport:
    """Remove kernel objects and reservations that no record owns. Caller holds ctl.lock."""
    report = GcReport()
    resolve_intents(ctl, report)
    containers = {c.id: c for c in ctl.records.containers()}
    running = {cid for cid, c in containers.items() if c.state == State.RUNNING}
    networks = ctl.records.networks()
    bridges = {n.bridge for n in networks if n.bridge}

    # Records first: reservations whose owner is gone or not running.
    for endpoint in ctl.records.endpoints():
        if endpoint.container_id not in running:
            ctl.records.delete_endpoint(endpoint.id)
            report.released.append(f"endpoint {endpoint.id[:12]} ({endpoint.ip})")
    for cid, binding, _ip in ctl.records.ports():
        if cid not in running:
            report.released.append(f"port {binding.host_ip}:{binding.host_port}/{binding.proto}")
    for cid in {cid for cid, _b, _ip in ctl.records.ports()} - running:
        ctl.records.release_ports(cid)
    for row in ctl.store.query("SELECT DISTINCT container_id FROM leases"):
        cid = str(row["container_id"])
        if cid not in containers:
            ctl.records.release_leases(cid)
            report.released.append(f"addresses of removed container {cid[:12]}")
        elif cid not in running:
            ctl.records.release_leases(cid, keep_static=True)

    # Owners without their kernel objects: a running container whose veth vanished (a crash in
    # the middle of `network disconnect`, or someone's `ip link del`) gets it back as recorded.
    _recreate_missing_veths(ctl, containers, running, report)

    # Kernel objects with our prefixes and no owner.
    owned_veths = {e.host_veth for e in ctl.records.endpoints()}
    bridge_index = {
        info.index: info.ifname for info in links.list_links(ctl.ipr) if info.ifname in bridges
    }
    for info in links.list_links(ctl.ipr):
        try:
            if (
                info.ifname.startswith("veth")
                and info.master in bridge_index
                and info.ifname not in owned_veths
            ):
                links.delete_link(ctl.ipr, info.ifname)
                report.removed.append(f"veth {info.ifname}")
            elif (
                info.kind == "bridge"
                and info.ifname.startswith("br-")
                and len(info.ifname) == 15
                and info.ifname not in bridges
            ):
                links.delete_link(ctl.ipr, info.ifname)
                report.removed.append(f"bridge {info.ifname}")
        except Exception as exc:
            report.problems.append(f"{info.ifname}: {exc}")
    try:
        report.removed += ctl.lan.collect_garbage()
    except Exception as exc:
        report.problems.append(f"pipework: {exc}")
    owned_netns = {ctl.paths.netns_path(cid).name for cid in running}
    if ctl.paths.netns_dir.is_dir():
        for path in ctl.paths.netns_dir.iterdir():
            if path.name not in owned_netns:
                try:
                    netns.delete_netns(path)
                    report.removed.append(f"netns {path.name}")
                except Exception as exc:
                    report.problems.append(f"netns {path.name}: {exc}")
    try:
        ctl.networks.sync_firewall()
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


def _recreate_missing_veths(
    ctl: Controller, containers: dict[str, Container], running: set[str], report: GcReport
) -> None:
    present = {info.ifname for info in links.list_links(ctl.ipr)}
    nets = {n.id: n for n in ctl.records.networks()}
    for e in ctl.records.endpoints():
        net = nets.get(e.network_id)
        c = containers.get(e.container_id)
        if e.container_id not in running or e.host_veth in present or c is None:
            continue
        if net is None or net.driver != Driver.BRIDGE or not net.bridge or not c.netns_path:
            continue
        bridge = links.link_info(ctl.ipr, net.bridge)
        if bridge is None:
            report.problems.append(f"bridge {net.bridge} of network {net.name} is missing")
            continue
        plan = links.VethPlan(
            host_ifname=e.host_veth,
            container_ifname=e.ifname,
            mac=e.mac,
            mtu=net.mtu,
            bridge_index=bridge.index,
            address=e.interface,
            gateway=e.gateway,
            default_route=e.ifname == "eth0" and e.gateway is not None,
        )
        try:
            links.add_veth_into(ctl.ipr, Path(c.netns_path), plan)
            report.recreated.append(f"veth {e.host_veth} of {c.name} on {net.name}")
        except Exception as exc:
            report.problems.append(f"re-create {e.host_veth} of {c.name}: {exc}")


class FirewallGuard:
    """Rebuilds boxnet's rules when they vanish behind its back (`nft flush ruleset`, a
    firewalld reload): checked every FIREWALL_CHECK_SECONDS, so within seconds, not never."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="boxnet-fwguard", daemon=True)

    def start(self) -> None:
        if self.ctl.firewall is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(FIREWALL_CHECK_SECONDS):
            firewall = self.ctl.firewall
            if firewall is None:
                return
            try:
                if not firewall.is_intact():
                    with self.ctl.lock:
                        log.warning("boxnet's firewall rules were removed: rebuilding them")
                        self.ctl.networks.sync_firewall()
            except Exception:
                log.exception("firewall check failed")
