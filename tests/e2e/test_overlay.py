"""Issue 16: overlay networks across hosts, end to end.

One lab for the module: three hosts on the underlay 10.99.0.0/16, a real etcd in the router, an
outside web server at 203.0.113.2, boxnetd on every host with --cluster-store. Observers:
ping/wget/nc between containers on different hosts, `ip -j -d link`, `bridge -j fdb`,
`ip -j neigh`, etcdctl.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from boxnet.lab import Daemon
from boxnet.lab.overlay import OUTSIDE, OverlayLab, host_address, overlay_lab
from boxnet.lab.proc import tool

pytestmark = pytest.mark.e2e

UNDERLAY_MTU = 1500
OVERLAY_MTU = UNDERLAY_MTU - 50


@pytest.fixture(scope="module")
def env() -> Iterator[OverlayLab]:
    lab = overlay_lab(3)
    try:
        for i in range(3):
            lab.daemon(i)
        yield lab
    finally:
        lab.lab.close()


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def inspect(d: Daemon, ref: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", ref).stdout)
    return data[0] if isinstance(data, list) else data  # type: ignore[no-any-return]


def ip_of(d: Daemon, name: str, network: str) -> str:
    return str(inspect(d, name)["NetworkSettings"]["Networks"][network]["IPAddress"])


def network_names(d: Daemon, driver: str = "overlay") -> set[str]:
    out = d.cli("network", "ls", "--filter", f"driver={driver}", "--format", "{{.Name}} {{.Scope}}")
    return set(out.stdout.split("\n")) - {""}


def pings(d: Daemon, name: str, dest: str, *extra: str) -> bool:
    r = d.cli("exec", name, "ping", "-c1", "-W2", *extra, dest, check=False)
    return r.returncode == 0


def test_network_created_once_is_global_on_every_host(env: OverlayLab) -> None:
    d1, d2, d3 = (env.daemons[i] for i in range(3))
    d1.cli("network", "create", "-d", "overlay", "--subnet", "10.10.0.0/24", "ov1")
    for d in (d1, d2, d3):
        wait_for(lambda d=d: "ov1 global" in network_names(d), f"ov1 on {d}")  # type: ignore[misc]
    ids = {inspect_network(d, "ov1")["Id"] for d in (d1, d2, d3)}
    assert len(ids) == 1
    # The same VNI everywhere, a VXLAN device per host with the underlay's MTU - 50.
    scoped = d3.cli("network", "ls", "--filter", "scope=global", "--format", "{{.Name}}").stdout
    assert scoped.split() == ["ov1"]
    vni = inspect_network(d2, "ov1")["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
    for i, host in enumerate(env.hosts):
        (link,) = host.ip_json("-d", "link", "show", "dev", f"vx-{vni}")
        info = link["linkinfo"]["info_data"]
        assert info["id"] == int(vni) and info["port"] == 4789
        assert info["local"] == host_address(i) and not info.get("learning", False)
        assert link["mtu"] == OVERLAY_MTU
        bridge = f"ov-{next(iter(ids))[:12]}"
        assert link["master"] == bridge
    # A name taken cluster-wide is refused on another host too.
    again = d2.cli("network", "create", "-d", "overlay", "ov1", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def inspect_network(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("network", "inspect", name).stdout)
    return data[0]  # type: ignore[no-any-return]


def test_containers_on_two_hosts_ping_and_talk_tcp(env: OverlayLab) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    d1.cli("run", "-d", "--name", "a1", "--network", "ov1", "busybox", "sleep", "1000")
    d2.cli("run", "-d", "--name", "b1", "--network", "ov1", "busybox",
           "nc", "-ll", "-p", "7000", "-e", "echo", "hello-from-b1")  # fmt: skip
    a_ip, b_ip = ip_of(d1, "a1", "ov1"), ip_of(d2, "b1", "ov1")
    assert a_ip != b_ip and a_ip.startswith("10.10.0.") and b_ip.startswith("10.10.0.")
    wait_for(lambda: pings(d1, "a1", b_ip), "a1 -> b1 ping")
    assert pings(d2, "b1", a_ip)
    out = d1.cli("exec", "a1", "nc", "-w", "3", b_ip, "7000", check=False).stdout
    assert "hello-from-b1" in out
    # The container's interface has the overlay MTU.
    mtu = d1.cli("exec", "a1", "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert int(mtu) == OVERLAY_MTU
    # Host 1's FDB and neighbour table know b1 behind host 2 (programmed, not learned).
    vni = inspect_network(d1, "ov1")["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
    b_mac = inspect(d2, "b1")["NetworkSettings"]["Networks"]["ov1"]["MacAddress"]
    fdb = env.hosts[0].run(["bridge", "-j", "fdb", "show", "dev", f"vx-{vni}"]).stdout
    assert any(e["mac"] == b_mac and e.get("dst") == host_address(1) for e in json.loads(fdb))
    neigh = env.hosts[0].ip_json("neigh", "show", "dev", f"vx-{vni}")
    assert any(n["dst"] == b_ip and n["lladdr"] == b_mac for n in neigh)


def inside(d: Daemon, name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a host program (iputils ping: busybox's has no -M) in the container's namespace."""
    netns = inspect(d, name)["NetworkSettings"]["SandboxKey"]
    argv = (tool("nsenter"), f"--net={netns}", "--", *argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


def test_full_size_packet_crosses_hosts(env: OverlayLab) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    b_ip = ip_of(d2, "b1", "ov1")
    ping = tool("ping")
    size = str(OVERLAY_MTU - 28)
    full = inside(d1, "a1", ping, "-c1", "-W2", "-M", "do", "-s", size, b_ip)
    assert full.returncode == 0, full.stdout + full.stderr
    # One byte more does not fit: the MTU is really the limit (no silent fragmentation).
    over = inside(d1, "a1", ping, "-c1", "-W2", "-M", "do", "-s", str(OVERLAY_MTU - 27), b_ip)
    assert over.returncode != 0


def test_encrypted_and_ipv6_are_refused_clearly(env: OverlayLab) -> None:
    d1 = env.daemons[0]
    r = d1.cli("network", "create", "-d", "overlay", "-o", "encrypted", "sec", check=False)
    assert r.returncode != 0 and "WireGuard" in r.stderr and "Traceback" not in r.stderr
    r = d1.cli("network", "create", "-d", "overlay", "--ipv6", "six", check=False)
    assert r.returncode != 0 and "IPv6" in r.stderr
    assert "sec" not in str(network_names(d1)) and "six" not in str(network_names(d1))
    assert OUTSIDE  # the outside host is used by the next step's tests


def test_names_and_aliases_of_containers_on_other_hosts_resolve(env: OverlayLab) -> None:
    d1, d3 = env.daemons[0], env.daemons[2]
    d3.cli("run", "-d", "--name", "c3", "--network", "ov1", "--network-alias", "cee",
           "busybox", "sleep", "1000")  # fmt: skip
    c_ip = ip_of(d3, "c3", "ov1")
    wait_for(lambda: pings(d1, "a1", "c3"), "a1 -> c3 by name")
    assert pings(d1, "a1", "cee") and pings(d1, "a1", "b1")
    answer = d1.cli("exec", "a1", "nslookup", "cee").stdout
    assert c_ip in answer
    # and back, from host 3 to host 1
    assert pings(d3, "c3", "a1")


def test_overlay_containers_reach_the_outside_and_publish_on_their_host(env: OverlayLab) -> None:
    d1, d3 = env.daemons[0], env.daemons[2]
    out = d1.cli("exec", "a1", "wget", "-qO-", f"http://{OUTSIDE}/").stdout
    assert json.loads(out)["client"] == host_address(0)  # masqueraded: the outside sees host 1
    d3.cli("run", "-d", "--name", "web3", "--network", "ov1", "-p", "8080:80",
           "busybox", "httpd", "-f", "-p", "80")  # fmt: skip
    curl = [tool("curl"), "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3"]

    def served() -> bool:
        r = env.router.run([*curl, f"http://{host_address(2)}:8080/"], check=False)
        return r.stdout.strip() == "404"  # busybox httpd without an index: its 404 is an answer

    wait_for(served, "the published port on host 3")


def test_overlay_networks_are_isolated_from_each_other_and_from_bridges(env: OverlayLab) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    d1.cli("network", "create", "-d", "overlay", "ov2")
    wait_for(lambda: "ov2 global" in network_names(d2), "ov2 on host 2")
    d2.cli("run", "-d", "--name", "o2b", "--network", "ov2", "busybox", "sleep", "1000")
    d1.cli("run", "-d", "--name", "o2a", "--network", "ov2", "busybox", "sleep", "1000")
    target = ip_of(d2, "o2b", "ov2")
    wait_for(lambda: pings(d1, "o2a", target), "o2a -> o2b (same overlay)")  # positive control
    assert not pings(d1, "a1", target)  # ov1 -> ov2 across hosts: dropped
    assert not pings(d1, "a1", ip_of(d1, "o2a", "ov2"))  # ov1 -> ov2 on one host
    d1.cli("network", "create", "--subnet", "10.77.0.0/24", "lb")
    d1.cli("run", "-d", "--name", "x1", "--network", "lb", "busybox", "sleep", "1000")
    assert pings(d1, "x1", "10.77.0.1")  # the bridge network itself works
    assert not pings(d1, "x1", ip_of(d1, "a1", "ov1"))
    assert not pings(d1, "a1", ip_of(d1, "x1", "lb"))
    assert not pings(d1, "x1", ip_of(env.daemons[1], "b1", "ov1"))


def test_rm_is_refused_while_another_host_uses_it_then_goes_everywhere(env: OverlayLab) -> None:
    d1, d2, d3 = (env.daemons[i] for i in range(3))
    vni = inspect_network(d3, "ov2")["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
    d1.cli("rm", "-f", "o2a")
    refused = d1.cli("network", "rm", "ov2", check=False)
    assert refused.returncode != 0 and host_address(1) in refused.stderr  # o2b on host 2
    d2.cli("rm", "-f", "o2b")
    wait_for(lambda: d1.cli("network", "rm", "ov2", check=False).returncode == 0, "rm ov2")
    for d in (d1, d2, d3):
        wait_for(lambda d=d: "ov2 global" not in network_names(d), f"ov2 gone on {d}")  # type: ignore[misc]
    links = {link["ifname"] for link in env.hosts[2].ip_json("link", "show")}
    assert f"vx-{vni}" not in links


def test_two_hosts_creating_at_the_same_moment_get_distinct_subnets_and_vnis(
    env: OverlayLab,
) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    done: dict[str, int] = {}

    def create(d: Daemon, name: str) -> None:
        done[name] = d.cli("network", "create", "-d", "overlay", name, check=False).returncode

    threads = [threading.Thread(target=create, args=(d, f"race{i}")) for i, d in ((1, d1), (2, d2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert done == {"race1": 0, "race2": 0}
    wait_for(lambda: {"race1 global", "race2 global"} <= network_names(env.daemons[2]), "both")
    nets = [inspect_network(env.daemons[2], n) for n in ("race1", "race2")]
    subnets = [n["IPAM"]["Config"][0]["Subnet"] for n in nets]
    vnis = [n["Options"]["com.docker.network.driver.overlay.vxlanid_list"] for n in nets]
    assert subnets[0] != subnets[1] and vnis[0] != vnis[1], (subnets, vnis)


def test_connect_and_disconnect_a_running_container(env: OverlayLab) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    d1.cli("network", "connect", "ov1", "x1")  # x1 runs on the bridge network lb of host 1
    x_ip = ip_of(d1, "x1", "ov1")
    wait_for(lambda: pings(d2, "b1", x_ip), "b1 (host 2) -> x1's new overlay address")
    assert pings(d1, "x1", "b1")
    vni = inspect_network(d2, "ov1")["Options"]["com.docker.network.driver.overlay.vxlanid_list"]

    def host2_knows() -> bool:
        neigh = env.hosts[1].ip_json("neigh", "show", "dev", f"vx-{vni}")
        return any(n["dst"] == x_ip for n in neigh)

    assert host2_knows()
    d1.cli("network", "disconnect", "ov1", "x1")
    wait_for(lambda: not host2_knows(), "x1's entry gone from host 2")
    assert not pings(d2, "b1", x_ip)


def test_starts_on_two_hosts_at_once_get_distinct_addresses(env: OverlayLab) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    names = [(d, f"par{h}{i}") for h, d in ((1, d1), (2, d2)) for i in range(3)]

    def run(d: Daemon, name: str) -> None:
        d.cli("run", "-d", "--name", name, "--network", "ov1", "busybox", "sleep", "1000")

    threads = [threading.Thread(target=run, args=pair) for pair in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ips = [ip_of(d, name, "ov1") for d, name in names]
    assert len(set(ips)) == len(ips), ips
    # and each is reachable from the other host
    target = ip_of(d2, "par20", "ov1")
    wait_for(lambda: pings(d1, "par10", target), "par10 -> par20")


def test_an_address_that_moves_to_another_host_is_reachable_there(env: OverlayLab) -> None:
    """MACs derive from addresses: an address freed on host 1 and claimed on host 2 comes back
    with the same MAC. Host 2's bridge must not keep sending that MAC into the VXLAN port (where
    the old endpoint was reached): the new local container must answer at once."""
    d1, d2 = env.daemons[0], env.daemons[1]
    moving = "10.10.0.200"
    d1.cli("run", "-d", "--name", "mv1", "--network", "ov1", "--ip", moving, "busybox",
           "sleep", "1000")  # fmt: skip
    wait_for(lambda: pings(d2, "b1", moving), "b1 (host 2) -> mv1 (host 1)")
    vni = inspect_network(d2, "ov1")["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
    mac = inspect(d1, "mv1")["NetworkSettings"]["Networks"]["ov1"]["MacAddress"]

    def bridge_ports_of_mac(host: int) -> set[str]:
        fdb = json.loads(env.hosts[host].run(["bridge", "-j", "fdb", "show"]).stdout)
        return {e["ifname"] for e in fdb if e["mac"] == mac and "master" in e}

    # On host 2 the remote MAC is the bridge's static entry on vx-<vni>, not a learned one.
    fdb = json.loads(env.hosts[1].run(["bridge", "-j", "fdb", "show", "dev", f"vx-{vni}"]).stdout)
    assert [e["state"] for e in fdb if e["mac"] == mac and "master" in e] == ["static"]
    d1.cli("rm", "-f", "mv1")
    wait_for(lambda: not bridge_ports_of_mac(1), "mv1's bridge entry gone from host 2")

    def start_on_host2() -> bool:  # the claim is released just after the withdrawal
        argv = ("run", "-d", "--name", "mv2", "--network", "ov1", "--ip", moving)
        return d2.cli(*argv, "busybox", "sleep", "1000", check=False).returncode == 0

    wait_for(start_on_host2, "mv2 on host 2 with mv1's address")
    assert inspect(d2, "mv2")["NetworkSettings"]["Networks"]["ov1"]["MacAddress"] == mac
    wait_for(lambda: pings(d1, "a1", moving), "a1 (host 1) -> mv2 (host 2)")
    assert pings(d2, "b1", moving)  # and locally on host 2
