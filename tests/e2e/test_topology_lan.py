"""Issue 19 on a LAN (tutorial §3.2): the topology shows host bridges, pipework and macvlan.

host1 moves ens33 onto br0 and pipeworks a container onto it; host2 runs a macvlan network on
ens33. Observers: `ip -j` in each host namespace and ping from the LAN's workstation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import Daemon, Lab, LanLab, lan_lab

pytestmark = pytest.mark.e2e
TOMCAT, M1 = "192.168.198.145", "192.168.198.161"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[LanLab, Daemon, Daemon]]:
    lab = Lab("topolan")
    try:
        lan = lan_lab(2, lab)
        d1 = lab.boxnetd(lan.hosts[0])
        d2 = lab.boxnetd(lan.hosts[1])
        d1.cli("hostbridge", "create", "br0", "--uplink", "ens33")
        d1.cli("run", "-d", "--name", "tomcat", "busybox", "sleep", "1000")
        d1.cli("pipework", "br0", "tomcat", f"{TOMCAT}/24@192.168.198.2")
        d2.cli("network", "create", "-d", "macvlan", "-o", "parent=ens33", "--subnet",
               "192.168.198.0/24", "--gateway", "192.168.198.2", "--ip-range",
               "192.168.198.160/28", "-o", "boxnet.macvlan.host_ip=192.168.198.180",
               "lan")  # fmt: skip
        d2.cli("run", "-d", "--net", "lan", "--ip", M1, "--name", "m1", "busybox", "sleep", "1000")
        yield lan, d1, d2
    finally:
        lab.close()


def topology(d: Daemon) -> dict[str, Any]:
    return dict(json.loads(d.cli("topology", "--format", "json").stdout))


def test_host_bridge_and_pipework(env: tuple[LanLab, Daemon, Daemon]) -> None:
    lan, d1, _ = env
    host1 = lan.hosts[0]
    doc = topology(d1)
    assert doc["hostbridges"] == [["br0", "ens33"]]
    uplinks = {u["name"]: u for u in doc["uplinks"]}
    kernel_br0 = host1.ip_json("-4", "addr", "show", "dev", "br0")[0]["addr_info"]
    assert uplinks["br0"]["addresses"] == [f"{a['local']}/{a['prefixlen']}" for a in kernel_br0]
    assert uplinks["ens33"]["master"] == "br0"
    tomcat = next(c for c in doc["containers"] if c["name"] == "tomcat")
    [att] = tomcat["lan"]
    assert (att["kind"], att["host_if"], att["ifname"], att["address"]) == (
        "pipework veth", "br0", "eth1", f"{TOMCAT}/24",
    )  # fmt: skip
    ports_of_br0 = {x["ifname"] for x in host1.ip_json("link", "show", "master", "br0")}
    assert att["host_ifname"] in ports_of_br0
    assert lan.workstation.ping(TOMCAT)
    assert doc["differences"] == []
    drawing = d1.cli("topology", "--format", "svg").stdout
    assert f"pipework veth br0: eth1 {TOMCAT}/24" in drawing
    assert "host bridge br0 on ens33" in drawing


def test_macvlan_network(env: tuple[LanLab, Daemon, Daemon]) -> None:
    lan, _, d2 = env
    doc = topology(d2)
    net = next(n for n in doc["networks"] if n["name"] == "lan")
    assert (net["driver"], net["bridge"], net["in_kernel"]) == ("macvlan", "ens33", True)
    m1 = next(c for c in doc["containers"] if c["name"] == "m1")
    assert [(e["network"], e["ip"], e["host_veth"]) for e in m1["endpoints"]] == [("lan", M1, "")]
    assert lan.workstation.ping(M1)
    shims = [x["ifname"] for x in lan.hosts[1].ip_json("-d", "link", "show", "type", "macvlan")]
    assert shims and all(s.startswith("bxmh-") for s in shims)
    assert doc["differences"] == []  # the host shim is explained, not a leftover
