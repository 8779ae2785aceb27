"""The topology model (records + kernel snapshot), its differences, and the renderers."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from ipaddress import IPv4Address, IPv4Interface

from topology_scene import LAYOUT, NETWORKS, kernel, recorded

from boxnet.kernel.snapshot import KernelLink, KernelSnapshot
from boxnet.topology import page, render, svg
from boxnet.topology.model import Topology, build

SVG = "{http://www.w3.org/2000/svg}"


def test_everything_recorded_and_present_has_no_difference() -> None:
    t = build(recorded(), kernel())
    assert t.differences == ()
    assert [n.name for n in t.networks] == sorted(n.name for n in NETWORKS)
    assert {c.name for c in t.containers} == {name for name, _n, _l in LAYOUT}
    a1 = next(c for c in t.containers if c.name == "a1")
    assert [(e.network, e.ip, e.ifname, e.host_veth, e.in_kernel) for e in a1.endpoints] == [
        ("net1", "172.20.0.2", "eth0", "vetha1", True)
    ]
    d1 = next(c for c in t.containers if c.name == "d1")
    assert [p.label for p in d1.ports] == ["0.0.0.0:8080->80/tcp", "127.0.0.1:8090->80/tcp"]
    assert [u.name for u in t.uplinks] == ["lo", "eth0"]


def _without(snapshot: KernelSnapshot, *names: str) -> list[KernelLink]:
    return [link for link in snapshot.links if link.name not in names]


def test_differences_between_kernel_and_records() -> None:
    snap = kernel()
    links = _without(snap, "br-net2", "vethb1", "vetha2")
    links.append(KernelLink(90, "vetha2", "veth", "br-net2", True))  # on the wrong bridge
    links.append(KernelLink(91, "vethleft0", "veth", "boxnet0", True))  # nobody's
    rec = dataclasses.replace(recorded(), firewall_intact=False)
    t = build(rec, KernelSnapshot(tuple(links)))
    diffs = {(d.subject, d.recorded, d.kernel) for d in t.differences}
    assert diffs == {
        ("br-net2", "bridge of network net2", "missing"),
        ("vethb1", "b1 on br-net2", "missing"),
        ("vetha2", "a2 on br-net1", "port of br-net2"),
        ("vethleft0", "", "veth nobody recorded"),
        ("nftables rules", "boxnet's rules", "changed or removed"),
    }
    net2 = next(n for n in t.networks if n.name == "net2")
    assert not net2.in_kernel


def test_json_is_the_model_with_a_content_version() -> None:
    t = build(recorded(), kernel())
    doc = render.to_json(t)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["version"] == render.to_json(build(recorded(), kernel()))["version"]
    fewer = dataclasses.replace(t, containers=t.containers[1:])
    assert render.to_json(fewer)["version"] != doc["version"]


def test_dot_has_a_node_per_network_and_container_and_an_edge_per_endpoint() -> None:
    dot = render.to_dot(build(recorded(), kernel()))
    assert dot.startswith("digraph boxnet {") and dot.rstrip().endswith("}")
    for n in NETWORKS:
        assert f'"net:{n.name}" [label=' in dot
    for name, net, _ in LAYOUT:
        assert f'"net:{net}" -> "c:{name}"' in dot
    assert "0.0.0.0:8080->80/tcp" in dot


def _groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def test_svg_draws_every_network_container_and_port() -> None:
    root = ET.fromstring(svg.to_svg(build(recorded(), kernel())))
    assert {g.get("data-name") for g in _groups(root, "network")} == {n.name for n in NETWORKS}
    boxes = {(g.get("data-name"), g.get("data-network")) for g in _groups(root, "container")}
    assert boxes == {(name, net) for name, net, _ in LAYOUT}
    ports = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "port"]
    assert "port 0.0.0.0:8080->80/tcp" in ports
    assert _groups(root, "differs") == []


def test_svg_marks_differences() -> None:
    links = _without(kernel(), "br-net2", "vethb1")
    root = ET.fromstring(svg.to_svg(build(recorded(), KernelSnapshot(tuple(links)))))
    assert {g.get("data-name") for g in _groups(root, "differs")} == {"net2", "b1"}
    subjects = {t.get("data-subject") for t in root.iter(f"{SVG}text")} - {None}
    assert subjects == {"br-net2", "vethb1"}


def test_svg_of_an_empty_host() -> None:
    empty = Topology("h", "none", None, (), (), (), (), ())
    ET.fromstring(svg.to_svg(empty))


def test_page_is_self_contained() -> None:
    html = page.html()
    assert "<script>" in html and "/boxnet/topology.json?wait=" in html
    assert "src=" not in html and "http://" not in html and "https://" not in html


def test_a_crowded_network_spreads_into_sub_columns() -> None:
    from boxnet.model import Container, ContainerSpec, Endpoint, State

    rec = recorded()
    many = [
        Container(f"m{i:03d}0000", f"m{i:03d}", ContainerSpec("busybox", ()), "", State.RUNNING)
        for i in range(300)
    ]
    first = IPv4Address("172.20.0.10")
    eps = []
    for i, c in enumerate(many):
        address = (IPv4Interface(f"{first + i}/16"),)
        eps.append(Endpoint(f"e{i}", c.id, "id-net1", "eth0", address, (), "", f"vm{i}"))
    rec = dataclasses.replace(
        rec, containers=[*rec.containers, *many], endpoints=[*rec.endpoints, *eps]
    )
    veths = [KernelLink(1000 + i, f"vm{i}", "veth", "br-net1", True) for i in range(300)]
    snap = KernelSnapshot((*kernel().links, *veths))
    root = ET.fromstring(svg.to_svg(build(rec, snap)))
    boxes = [g for g in _groups(root, "container") if g.get("data-network") == "net1"]
    assert len(boxes) == 302
    xs = {float(next(g.iter(f"{SVG}rect")).get("x") or 0) for g in boxes}
    assert len(xs) == -(-302 // svg.ROWS)  # one x per sub-column
    assert int(root.get("height") or 0) < 2000  # spread sideways, not down
