"""Reads the live state for the page and for explain: records under the controller's lock, one
kernel snapshot (two netlink dumps), the firewall backend's own intactness check."""

from __future__ import annotations

import socket
import time
from ipaddress import IPv4Interface
from typing import TYPE_CHECKING, Any

from boxnet.kernel import snapshot
from boxnet.model import State
from boxnet.topology import render
from boxnet.topology.explain import Evaluator, Explanation, Scene, reach_matrix
from boxnet.topology.model import Recorded, Topology, build

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

LONG_POLL_STEP = 1.0  # seconds between looks while a page waits for a change


def _backend(ctl: Controller) -> str:
    return ctl.firewall.name if ctl.firewall is not None else "none"


def recorded(ctl: Controller) -> Recorded:
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
            firewall_intact=ctl.firewall.is_intact() if ctl.firewall is not None else None,
            hostname=socket.gethostname(),
        )


def scene_of(rec: Recorded, snap: snapshot.KernelSnapshot) -> Scene:
    assert rec.firewall is not None
    addresses = [IPv4Interface(a) for link in snap.links for a in link.addresses]
    return Scene(
        rec.networks, rec.containers, rec.endpoints, addresses, rec.firewall, rec.firewall_backend
    )


def scene(ctl: Controller) -> Scene:
    return scene_of(recorded(ctl), snapshot.take(ctl.ipr))


def topology(ctl: Controller) -> Topology:
    rec = recorded(ctl)
    snap = snapshot.take(ctl.ipr)
    topo = build(rec, snap)
    # One running container stands for each network: isolation is per network, not per member.
    ev = Evaluator(scene_of(rec, snap))
    stand_in: dict[str, str] = {}
    names = {c.id: c.name for c in rec.containers if c.state == State.RUNNING}
    nets = {n.id: n.name for n in rec.networks}
    for e in rec.endpoints:
        if e.container_id in names and e.network_id in nets:
            stand_in.setdefault(nets[e.network_id], names[e.container_id])
    matrix = reach_matrix(ev, list(stand_in.values()))
    by_name = {v: k for k, v in stand_in.items()}
    icc = {n.name: n.icc for n in rec.networks}
    for a, row in matrix.items():
        # Within one network: ICC decides (one stand-in cannot ping a second member of its own).
        topo.network_reach[by_name[a]] = {by_name[a]: icc[by_name[a]]} | {
            by_name[b]: ok for b, ok in row.items()
        }
    return topo


def explain(ctl: Controller, src: str, target: str) -> Explanation:
    return Evaluator(scene(ctl)).explain(src, target)


def wait_for_change(ctl: Controller, seen: str, timeout: float) -> dict[str, Any]:
    """The topology as JSON once its version differs from `seen` (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    doc = render.to_json(topology(ctl))
    while seen and doc["version"] == seen and time.monotonic() < deadline:
        time.sleep(LONG_POLL_STEP)
        doc = render.to_json(topology(ctl))
    return doc
