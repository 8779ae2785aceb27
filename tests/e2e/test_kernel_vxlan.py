"""Issue 16, step 3 (kernel part): boxnet.kernel.vxlan across two lab hosts on one underlay.

Each host gets a bridge, a VXLAN device vx-<vni> made by the verbs (nolearning, proxy, dstport
4789, local = the host's underlay address, MTU = underlay MTU - 50) and "containers" (lab
namespaces with a veth in the bridge); the remote endpoints are programmed by the verbs (FDB and
permanent neighbour entries). The last test does it from a real etcd: an agent per host (the
venv's python in the host's namespace) publishes its endpoint under a lease and programs the
others' from boxnet.cluster.endpoints.EndpointWatcher, as the overlay driver will.
Observers: `ip -j -d link`, `bridge -j fdb`, `ip -j neigh`, ping (with -M do at full size), HTTP.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from boxnet.kernel import vxlan
from boxnet.kernel.bridges import ensure_bridge
from boxnet.kernel.links import ipr_in, link_info
from boxnet.lab import LanLab, lan_lab
from boxnet.lab.daemon import venv_bin
from boxnet.lab.etcd import start_etcd
from boxnet.lab.netns import Netns
from boxnet.lab.proc import tool

pytestmark = pytest.mark.e2e

UNDERLAY_MTU = 1500
OVERLAY_MTU = UNDERLAY_MTU - vxlan.VXLAN_OVERHEAD


@dataclass(frozen=True)
class Box:
    ns: Netns
    ip: IPv4Address
    mac: str


@dataclass(frozen=True)
class Env:
    lan: LanLab
    boxes: dict[str, Box]


def underlay(host: Netns) -> IPv4Address:
    (link,) = host.ip_json("-4", "addr", "show", "dev", "ens33")
    return IPv4Address(link["addr_info"][0]["local"])


def plug(lan: LanLab, host: Netns, bridge: str, name: str, ip: str) -> Box:
    """A container-like namespace with eth0 (ip/24, overlay MTU) in host's bridge."""
    box = lan.lab.netns(name)
    lan.lab.link(host, f"v{name}", None, box, "eth0", None)
    host.ip("link", "set", "dev", f"v{name}", "master", bridge, "mtu", str(OVERLAY_MTU), "up")
    box.ip("link", "set", "dev", "eth0", "mtu", str(OVERLAY_MTU))
    box.addr("eth0", f"{ip}/24")
    (link,) = box.ip_json("link", "show", "dev", "eth0")
    return Box(box, IPv4Address(ip), link["address"])


def make_segment(host: Netns, vni: int) -> int:
    """Bridge br-vx<vni> with vx-<vni> enslaved, made by the verbs; vx-<vni>'s index."""
    with ipr_in(host.path) as ipr:
        bridge, _new = ensure_bridge(ipr, f"br-vx{vni}", OVERLAY_MTU)
        return vxlan.ensure_vxlan(ipr, vxlan.VxlanPlan(vni, underlay(host), OVERLAY_MTU, bridge))


def program(host: Netns, vni: int, remote_host: Netns, boxes: list[Box]) -> None:
    with ipr_in(host.path) as ipr:
        info = link_info(ipr, vxlan.vxlan_name(vni))
        assert info is not None
        vxlan.add_remote_host(ipr, info.index, underlay(remote_host))
        vxlan.add_remote_host(ipr, info.index, underlay(remote_host))  # idempotent
        for box in boxes:
            vxlan.add_remote_endpoint(ipr, info.index, box.mac, box.ip, underlay(remote_host))


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    lan = lan_lab(2)
    try:
        h1, h2 = lan.hosts
        for host in (h1, h2):
            make_segment(host, 4097)
            make_segment(host, 4098)
        boxes = {
            "a1": plug(lan, h1, "br-vx4097", "a1", "10.99.7.2"),
            "a2": plug(lan, h2, "br-vx4097", "a2", "10.99.7.3"),
            # Same subnet, other VNI: must stay unreachable from a1/a2.
            "b1": plug(lan, h1, "br-vx4098", "b1", "10.99.7.4"),
            "b2": plug(lan, h2, "br-vx4098", "b2", "10.99.7.5"),
        }
        program(h1, 4097, h2, [boxes["a2"]])
        program(h2, 4097, h1, [boxes["a1"]])
        program(h1, 4098, h2, [boxes["b2"]])
        program(h2, 4098, h1, [boxes["b1"]])
        yield Env(lan, boxes)
    finally:
        lan.lab.close()


def test_the_device_is_what_the_verbs_promise(env: Env) -> None:
    h1 = env.lan.hosts[0]
    (link,) = h1.ip_json("-d", "link", "show", "dev", "vx-4097")
    data = link["linkinfo"]["info_data"]
    assert link["linkinfo"]["info_kind"] == "vxlan"
    assert (data["id"], data["port"], data["local"]) == (4097, 4789, "192.168.198.142")
    assert data["learning"] is False and data["proxy"] is True
    assert "group" not in data and "remote" not in data  # no multicast, no single remote
    assert link["mtu"] == OVERLAY_MTU and link["master"] == "br-vx4097"
    fdb = json.loads(h1.run([tool("bridge"), "-j", "fdb", "show", "dev", "vx-4097"]).stdout)
    static = {(e["mac"], e.get("dst")) for e in fdb if "permanent" in e.get("state", "")}
    assert ("00:00:00:00:00:00", "192.168.198.143") in static
    assert (env.boxes["a2"].mac, "192.168.198.143") in static
    flood = [e for e in fdb if e["mac"] == "00:00:00:00:00:00"]
    assert len(flood) == 1  # appended twice, kept once
    neigh = h1.ip_json("neigh", "show", "dev", "vx-4097")
    assert [(n["dst"], n["lladdr"], n["state"]) for n in neigh] == [
        ("10.99.7.3", env.boxes["a2"].mac, ["PERMANENT"])
    ]


def test_containers_on_two_hosts_talk_over_the_vni(env: Env) -> None:
    a1, a2 = env.boxes["a1"], env.boxes["a2"]
    assert a1.ns.ping(str(a2.ip))
    assert a2.ns.ping(str(a1.ip))
    env.lan.lab.http_server(a2.ns, 8080)
    got = a1.ns.run([tool("curl"), "-s", "-m", "5", f"http://{a2.ip}:8080/"])
    assert json.loads(got.stdout)["client"] == str(a1.ip)


def test_a_full_size_packet_passes_and_one_byte_more_does_not(env: Env) -> None:
    a1, a2 = env.boxes["a1"], env.boxes["a2"]
    size = OVERLAY_MTU - 28  # IPv4 20 + ICMP 8
    ping = ["ping", "-n", "-c", "1", "-W", "2", "-M", "do"]
    assert a1.ns.run([*ping, "-s", str(size), str(a2.ip)], check=False).returncode == 0
    too_big = a1.ns.run([*ping, "-s", str(size + 1), str(a2.ip)], check=False)
    assert too_big.returncode != 0 and "message too long" in (too_big.stdout + too_big.stderr)


def test_another_vni_is_isolated(env: Env) -> None:
    a1, b1, b2 = env.boxes["a1"], env.boxes["b1"], env.boxes["b2"]
    assert b1.ns.ping(str(b2.ip))
    assert not a1.ns.ping(str(b2.ip))
    assert not b1.ns.ping(str(env.boxes["a2"].ip))


def test_a_removed_remote_endpoint_is_no_longer_reached(env: Env) -> None:
    h1, h2 = env.lan.hosts
    b1, b2 = env.boxes["b1"], env.boxes["b2"]
    with ipr_in(h1.path) as ipr:
        info = link_info(ipr, "vx-4098")
        assert info is not None
        vxlan.remove_remote_endpoint(ipr, info.index, b2.mac, b2.ip, underlay(h2))
        vxlan.remove_remote_endpoint(ipr, info.index, b2.mac, b2.ip, underlay(h2))  # idempotent
    assert h1.ip_json("neigh", "show", "dev", "vx-4098") == []
    b1.ns.ip("neigh", "flush", "dev", "eth0")
    # proxy: the VXLAN device answers ARP only from its table, so b2 cannot be resolved now.
    assert not b1.ns.ping(str(b2.ip))
    fdb = json.loads(h1.run([tool("bridge"), "-j", "fdb", "show", "dev", "vx-4098"]).stdout)
    # The VXLAN device's own entries carry a dst; the bridge's learned ones (master) do not.
    assert b2.mac not in {e["mac"] for e in fdb if "dst" in e}


AGENT = """
import sys, threading, time
from ipaddress import IPv4Address
from pyroute2 import IPRoute
from boxnet.cluster import EtcdStore
from boxnet.cluster.endpoints import EndpointRecord, EndpointWatcher, publish_endpoint
from boxnet.config.clustervalues import parse_cluster_store
from boxnet.kernel import vxlan
from boxnet.kernel.links import link_info
url, me, vni, ip, mac = sys.argv[1:6]
store = EtcdStore(parse_cluster_store(url), attempts=3, timeout=2.0)
ipr = IPRoute()  # this host's namespace: the agent runs inside it
vx = link_info(ipr, vxlan.vxlan_name(int(vni))).index
def add(rec):
    vxlan.add_remote_host(ipr, vx, IPv4Address(rec.host))
    vxlan.add_remote_endpoint(ipr, vx, rec.mac, IPv4Address(rec.ip), IPv4Address(rec.host))
def remove(rec):  # one endpoint per host here, so its host goes with it
    vxlan.remove_remote_endpoint(ipr, vx, rec.mac, IPv4Address(rec.ip), IPv4Address(rec.host))
    vxlan.remove_remote_host(ipr, vx, IPv4Address(rec.host))
lease = store.grant_lease(3)
publish_endpoint(store, EndpointRecord("net1", me, int(vni), ip, mac, me), lease)
EndpointWatcher(store, me, add, remove).start()
for _ in range(600):
    time.sleep(0.5)
    store.keep_alive(lease)
"""


def remote_entries(host: Netns, vni: int) -> tuple[list[str], list[str]]:
    """(neighbour IPs, FDB destinations) programmed on host's vx-<vni>."""
    neigh = [n["dst"] for n in host.ip_json("neigh", "show", "dev", f"vx-{vni}")]
    out = host.run([tool("bridge"), "-j", "fdb", "show", "dev", f"vx-{vni}"]).stdout
    return neigh, sorted({e["dst"] for e in json.loads(out) if "dst" in e})


def fresh_ping(box: Box, dest: IPv4Address) -> bool:
    """Ping after forgetting box's neighbour cache: an earlier probe's failed resolution is kept
    by the kernel for a while and would make this one fail too."""
    box.ns.ip("neigh", "flush", "dev", "eth0")
    return box.ns.ping(str(dest))


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_endpoints_from_the_store_program_remote_hosts_and_expire_with_them() -> None:
    lan = lan_lab(2)
    try:
        h1, h2 = lan.hosts
        etcd = start_etcd(lan.lab, lan.gateway, "192.168.198.2")
        for host in (h1, h2):
            make_segment(host, 4099)
        c1 = plug(lan, h1, "br-vx4099", "c1", "10.99.9.2")
        c2 = plug(lan, h2, "br-vx4099", "c2", "10.99.9.3")
        assert not c1.ns.ping(str(c2.ip))  # nothing programmed yet

        def agent(host: Netns, box: Box) -> subprocess.Popen[bytes]:
            argv = [str(venv_bin() / "python"), "-c", AGENT, etcd.store_url]
            argv += [str(underlay(host)), "4099", str(box.ip), box.mac]
            return host.popen(argv, stdin=subprocess.DEVNULL)

        agent(h1, c1)
        a2 = agent(h2, c2)
        wait_until(lambda: remote_entries(h1, 4099) == (["10.99.9.3"], ["192.168.198.143"]), "h1")
        wait_until(lambda: remote_entries(h2, 4099) == (["10.99.9.2"], ["192.168.198.142"]), "h2")
        assert fresh_ping(c1, c2.ip) and fresh_ping(c2, c1.ip)
        # host2's agent dies: its lease expires (3 s) and host1 forgets its endpoint and itself.
        a2.kill()
        a2.wait(10)
        wait_until(lambda: remote_entries(h1, 4099) == ([], []), "the expiry on h1")
        assert not fresh_ping(c1, c2.ip)
        # It comes back: host1 programs it again from the store.
        agent(h2, c2)
        wait_until(lambda: remote_entries(h1, 4099) == (["10.99.9.3"], ["192.168.198.143"]), "h1")
        assert fresh_ping(c1, c2.ip)
    finally:
        lan.lab.close()
