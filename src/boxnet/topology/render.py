"""Pure renderers of a Topology: JSON (the page's and scripts' feed) and Graphviz dot."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from boxnet.topology.model import Topology


def to_json(t: Topology) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(t)))  # tuples -> lists
    doc["version"] = version(doc)
    return doc


def version(doc: dict[str, Any]) -> str:
    """A short digest of the content: the page's long-poll waits for it to change."""
    body = {k: v for k, v in doc.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _id(*parts: str) -> str:
    return '"' + ":".join(p.replace('"', "") for p in parts) + '"'


def _label(*lines: str) -> str:
    return '"' + "\\n".join(x.replace('"', "'") for x in lines if x) + '"'


def to_dot(t: Topology) -> str:
    out = [
        "digraph boxnet {",
        "\trankdir=LR;",
        '\tnode [shape=box, fontname="monospace", fontsize=10];',
        f"\t{_id('host')} [label={_label(t.hostname, 'firewall: ' + t.firewall_backend)},"
        " shape=box3d];",
    ]
    differs = {d.subject for d in t.differences}
    for u in t.uplinks:
        style = "" if u.up else ", style=dashed"
        out.append(f"\t{_id('if', u.name)} [label={_label(u.name, *u.addresses)}{style}];")
        out.append(f"\t{_id('host')} -> {_id('if', u.name)} [arrowhead=none];")
    for n in t.networks:
        flags = ", ".join(f for f, on in (("internal", n.internal), ("no icc", not n.icc)) if on)
        color = ", color=red, style=dashed" if n.bridge in differs else ""
        label = _label(n.name, f"{n.driver} {n.bridge}", n.subnet, flags)
        out.append(f"\t{_id('net', n.name)} [label={label}, shape=component{color}];")
        out.append(f"\t{_id('host')} -> {_id('net', n.name)} [arrowhead=none];")
    for c in t.containers:
        ports = [p.label for p in c.ports]
        label = _label(c.name, c.state, *ports)
        out.append(f"\t{_id('c', c.name)} [label={label}, style=rounded];")
        for e in c.endpoints:
            color = "" if e.in_kernel or c.state != "running" else ", color=red, style=dashed"
            label = _label(f"{e.host_veth} <-> {e.ifname}" if e.host_veth else e.ifname, e.ip)
            edge = f"{_id('net', e.network)} -> {_id('c', c.name)}"
            out.append(f"\t{edge} [label={label}, arrowhead=none{color}];")
        for x in c.lan:
            label = _label(x.kind, x.ifname, x.address)
            out.append(
                f"\t{_id('if', x.host_if)} -> {_id('c', c.name)} [label={label}, style=dotted];"
            )
    out.append("}")
    return "\n".join(out) + "\n"
