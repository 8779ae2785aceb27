"""Reads the live state for the page and for explain: records under the controller's lock, one
kernel snapshot (two netlink dumps), the firewall backend's own intactness check."""

from __future__ import annotations

import socket
import time
from ipaddress import ip_interface
from typing import TYPE_CHECKING, Any

from boxnet.kernel import snapshot
from boxnet.model import State
from boxnet.topology import render
from boxnet.topology.explain import Evaluator, Explanation, Scene, reach_matrix
from boxnet.topology.model import Recorded, Topology, build

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

LONG_POLL_STEP = 1.0  # seconds between looks while a page waits for a change
# The backend's intactness check forks iptables-save on the iptables backend: pages polling
# every second share one answer this old at most (the firewall guard repairs within seconds).
INTACT_TTL = 5.0
CONTAINER_MATRIX_MAX = 25  # running containers up to which the page also gets a per-pair table
_intact_seen: dict[int, tuple[float, bool | None]] = {}  # id(controller) -> (when, answer)
_matrix_seen: dict[int, tuple[object, Any]] = {}  # id(controller) -> (key, the two matrices)


def _backend(ctl: Controller) -> str:
    return ctl.firewall.name if ctl.firewall is not None else "none"


def _firewall_intact(ctl: Controller) -> bool | None:
    if ctl.firewall is None:
        return None
    now = time.monotonic()
    seen = _intact_seen.get(id(ctl))
    if seen is None or now - seen[0] > INTACT_TTL:
        seen = _intact_seen[id(ctl)] = (now, ctl.firewall.is_intact())
    return seen[1]


def recorded(ctl: Controller, check_firewall: bool = True) -> Recorded:
    intact = _firewall_intact(ctl) if check_firewall else None
    with ctl.lock:
        return Recorded(
            networks=ctl.records.networks(),
            containers=ctl.records.containers(),
            endpoints=ctl.records.endpoints(),
            ports=ctl.records.ports(),
            attachments=ctl.lan.records.attachments(),
            hostbridges=ctl.lan.records.hostbridges(),
            firewall=ctl.networks.firewall_model(),
            firewall_backend=_backend(ctl),
            firewall_intact=intact,
            hostname=socket.gethostname(),
        )


def scene_of(rec: Recorded, snap: snapshot.KernelSnapshot) -> Scene:
    assert rec.firewall is not None
    addresses = [
        ip_interface(a) for link in snap.links for a in (*link.addresses, *link.addresses6)
    ]
    return Scene(
        rec.networks, rec.containers, rec.endpoints, addresses, rec.firewall, rec.firewall_backend
    )


def scene(ctl: Controller) -> Scene:
    return scene_of(recorded(ctl, check_firewall=False), snapshot.take(ctl.ipr))


def topology(ctl: Controller) -> Topology:
    rec = recorded(ctl)
    snap = snapshot.take(ctl.ipr)
    topo = build(rec, snap)
    network, containers = _reach(ctl, rec, snap)
    topo.network_reach.update(network)
    topo.container_reach.update(containers)
    return topo


Matrix = dict[str, dict[str, bool]]


def _reach(ctl: Controller, rec: Recorded, snap: snapshot.KernelSnapshot) -> tuple[Matrix, Matrix]:
    """Between networks, one running container standing for each (isolation is per network, not
    per member); between containers too when there are at most CONTAINER_MATRIX_MAX. Recomputed
    only when the networks, the running containers' addresses or the firewall intents change."""
    stand_in: dict[str, str] = {}
    names = {c.id: c.name for c in rec.containers if c.state == State.RUNNING}
    nets = {n.id: n.name for n in rec.networks}
    attached = []
    for e in rec.endpoints:
        if e.container_id in names and e.network_id in nets:
            stand_in.setdefault(nets[e.network_id], names[e.container_id])
            attached.append((names[e.container_id], e.network_id, str(e.primary.ip)))
    key = (
        rec.firewall,
        tuple((n.name, n.driver, n.internal, n.icc, n.ipam) for n in rec.networks),
        tuple(sorted(attached)),
    )
    seen = _matrix_seen.get(id(ctl))
    if seen is not None and seen[0] == key:
        return seen[1]
    ev = Evaluator(scene_of(rec, snap))
    matrix = reach_matrix(ev, list(stand_in.values()))
    by_name = {v: k for k, v in stand_in.items()}
    icc = {n.name: n.icc for n in rec.networks}
    network = {
        # Within one network: ICC decides (one stand-in cannot ping a second member of its own).
        by_name[a]: {by_name[a]: icc[by_name[a]]} | {by_name[b]: ok for b, ok in row.items()}
        for a, row in matrix.items()
    }
    members = sorted({name for name, _n, _ip in attached})
    containers = reach_matrix(ev, members) if len(members) <= CONTAINER_MATRIX_MAX else {}
    _matrix_seen[id(ctl)] = (key, (network, containers))
    return network, containers


def explain(ctl: Controller, src: str, target: str, family: int | None = None) -> Explanation:
    return Evaluator(scene(ctl)).explain(src, target, family)


def wait_for_change(ctl: Controller, seen: str, timeout: float) -> dict[str, Any]:
    """The topology as JSON once its version differs from `seen` (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    doc = render.to_json(topology(ctl))
    while seen and doc["version"] == seen and time.monotonic() < deadline:
        time.sleep(LONG_POLL_STEP)
        doc = render.to_json(topology(ctl))
    return doc
