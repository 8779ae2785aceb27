"""Issue 16: overlay networks when things fail, on the iptables backend (test_overlay.py runs
nftables): a host that dies (its daemon killed: its endpoints expire with its lease and leave
the other hosts' FDB, neighbour tables and DNS), that host coming back (same addresses, entries
again), etcd down (existing traffic flows, changes fail clearly and resume once it is back).
Observers: `bridge -j fdb`, `ip -j neigh` in the other hosts, ping and nslookup in containers.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from boxnet.faults import ENV
from boxnet.lab import Daemon
from boxnet.lab import firewalls as fw
from boxnet.lab.netns import Netns
from boxnet.lab.overlay import OUTSIDE, OverlayLab, host_address, overlay_lab
from boxnet.lab.proc import tool

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env() -> Iterator[OverlayLab]:
    lab = overlay_lab(3)
    try:
        for i in range(3):
            lab.daemon(i, *fw.daemon_args("iptables"))
        d1, d2, d3 = (lab.daemons[i] for i in range(3))
        d1.cli("network", "create", "-d", "overlay", "--subnet", "10.20.0.0/24", "ovf")
        wait_for(lambda: all("ovf" in d.cli("network", "ls").stdout for d in (d2, d3)), "ovf")
        for d, name in ((d1, "f1"), (d2, "f2"), (d3, "f3")):
            d.cli("run", "-d", "--name", name, "--network", "ovf", "busybox", "sleep", "1000")
        yield lab
    finally:
        lab.lab.close()


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def settings(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    data = data[0] if isinstance(data, list) else data
    return data["NetworkSettings"]["Networks"]["ovf"]  # type: ignore[no-any-return]


def pings(d: Daemon, name: str, dest: str) -> bool:
    return d.cli("exec", name, "ping", "-c1", "-W1", dest, check=False).returncode == 0


def vxlan_dev(d: Daemon) -> str:
    data = json.loads(d.cli("network", "inspect", "ovf").stdout)[0]
    return f"vx-{data['Options']['com.docker.network.driver.overlay.vxlanid_list']}"


def known(host: Netns, dev: str, mac: str, ip: str) -> tuple[bool, bool]:
    """(dev's own FDB sends mac to a remote VTEP, host's neighbour table has ip -> mac on dev).
    Entries the bridge learned on its vx- port (no dst) only say a frame once came that way."""
    fdb = json.loads(host.run(["bridge", "-j", "fdb", "show", "dev", dev]).stdout)
    neigh = host.ip_json("neigh", "show", "dev", dev)
    return (
        any(e["mac"] == mac and "dst" in e for e in fdb),
        any(n["dst"] == ip and n.get("lladdr") == mac for n in neigh),
    )


def test_a_dead_host_leaves_fdb_neighbours_and_dns_and_comes_back(env: OverlayLab) -> None:
    d1, d3 = env.daemons[0], env.daemons[2]
    f3 = settings(d3, "f3")
    ip3, mac3 = f3["IPAddress"], f3["MacAddress"]
    dev = vxlan_dev(d1)
    wait_for(lambda: pings(d1, "f1", "f3"), "f1 -> f3 by name")
    assert known(env.hosts[0], dev, mac3, ip3) == (True, True)
    assert known(env.hosts[1], dev, mac3, ip3) == (True, True)
    d3.kill(signal.SIGKILL)  # host 3's daemon dies: nothing keeps its lease alive
    d3.wait(10)
    for host in env.hosts[:2]:
        wait_for(lambda h=host: known(h, dev, mac3, ip3) == (False, False), "f3's entries gone")  # type: ignore[misc]
    assert ip3 not in d1.cli("exec", "f1", "nslookup", "f3", check=False).stdout
    assert not pings(d1, "f1", ip3)
    # The host comes back: its running container keeps its address and is reachable again.
    d3.start()
    assert settings(d3, "f3")["IPAddress"] == ip3
    wait_for(lambda: known(env.hosts[0], dev, mac3, ip3) == (True, True), "f3's entries back")
    wait_for(lambda: pings(d1, "f1", "f3"), "f1 -> f3 again")


def test_etcd_down_existing_traffic_flows_and_changes_resume(env: OverlayLab) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    ip2 = settings(d2, "f2")["IPAddress"]
    wait_for(lambda: pings(d1, "f1", ip2), "f1 -> f2")
    env.stop_etcd()
    assert pings(d1, "f1", ip2) and pings(d2, "f2", settings(d1, "f1")["IPAddress"])
    refused = d1.cli("network", "create", "-d", "overlay", "late", check=False)
    assert refused.returncode != 0 and "cluster store" in refused.stderr
    assert "Traceback" not in refused.stderr
    time.sleep(2)
    assert pings(d1, "f1", ip2)  # still flowing a while later
    env.restart_etcd()
    # Changes resume: a new container on host 2 becomes reachable from host 1 by name.
    wait_for(
        lambda: d2.cli("run", "-d", "--name", "g2", "--network", "ovf", "busybox", "sleep",
                       "1000", check=False).returncode == 0,
        "a start on host 2 after the outage",
    )  # fmt: skip
    wait_for(lambda: pings(d1, "f1", "g2"), "f1 -> g2 by name")


def test_isolation_outside_and_published_port_on_iptables(env: OverlayLab) -> None:
    d1 = env.daemons[0]
    assert "10.99.1.1" in d1.cli("exec", "f1", "wget", "-qO-", f"http://{OUTSIDE}/").stdout
    d1.cli("run", "-d", "--name", "webf", "--network", "ovf", "-p", "8081:80",
           "busybox", "httpd", "-f", "-p", "80")  # fmt: skip
    curl = [tool("curl"), "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3"]
    url = f"http://{host_address(0)}:8081/"
    wait_for(lambda: env.router.run([*curl, url], check=False).stdout == "404", "published")
    d1.cli("network", "create", "--subnet", "10.78.0.0/24", "lbf")
    d1.cli("run", "-d", "--name", "xf", "--network", "lbf", "busybox", "sleep", "1000")
    assert pings(d1, "xf", "10.78.0.1")
    assert not pings(d1, "xf", settings(d1, "f1")["IPAddress"])
    assert not pings(d1, "xf", settings(env.daemons[1], "f2")["IPAddress"])
    assert "ovf" in fw.iptables_save(env.hosts[0], "iptables") or "ov-" in fw.iptables_save(
        env.hosts[0], "iptables"
    )


def test_one_etcd_member_of_three_down_changes_still_work() -> None:
    """etcd members on the hosts themselves (a real cluster's layout); one dies: overlay
    networks are still created, adopted and used across hosts."""
    lab = overlay_lab(3, etcd_on_hosts=3)
    try:
        d1, d2 = lab.daemon(0), lab.daemon(1)
        assert lab.etcd is not None
        lab.etcd.members[2].stop()
        d1.cli("network", "create", "-d", "overlay", "ov3")
        wait_for(lambda: "ov3" in d2.cli("network", "ls").stdout, "ov3 on host 2")
        d1.cli("run", "-d", "--name", "m1", "--network", "ov3", "busybox", "sleep", "1000")
        d2.cli("run", "-d", "--name", "m2", "--network", "ov3", "busybox", "sleep", "1000")
        wait_for(lambda: pings(d2, "m2", "m1"), "m2 -> m1 by name with 2 of 3 members")
    finally:
        lab.lab.close()


def test_a_crash_after_the_claim_leaves_a_whole_network_everywhere(
    env: OverlayLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    d1, d2 = env.daemons[0], env.daemons[1]
    monkeypatch.setenv(ENV, "overlay.create.claimed")
    d1.restart()  # the daemon now dies right after the etcd claim, before any kernel object
    done = d1.cli("network", "create", "-d", "overlay", "crashnet", check=False)
    assert d1.wait(10) is not None, f"the daemon did not crash: {done.stderr}"
    monkeypatch.delenv(ENV)
    d1.start()
    assert "interrupted change network.create" in d1.log_path.read_text()
    # The network exists in the cluster: both hosts have it, with its bridge and VXLAN device.
    for d in (d1, d2):
        wait_for(lambda d=d: "crashnet" in d.cli("network", "ls").stdout, f"crashnet on {d}")  # type: ignore[misc]
    data = json.loads(d1.cli("network", "inspect", "crashnet").stdout)[0]
    vni = data["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
    names = {link["ifname"] for link in env.hosts[0].ip_json("link", "show")}
    assert {f"ov-{data['Id'][:12]}", f"vx-{vni}"} <= names
    assert d1.pending_intents() == []
    d1.cli("run", "-d", "--name", "cr1", "--network", "crashnet", "busybox", "sleep", "1000")
    d2.cli("run", "-d", "--name", "cr2", "--network", "crashnet", "busybox", "sleep", "1000")
    wait_for(lambda: pings(d2, "cr2", "cr1"), "cr2 -> cr1 on the network made by the crash")
