"""Issue 16: boxnetd with --cluster-store/--cluster-advertise joins the cluster (a leased key
/boxnet/hosts/<address> in a real etcd), leaves it on a clean stop, keeps serving local networks
while etcd does not answer and joins once it does; `-d overlay` records its network in etcd.
Observers: etcdctl (Debian's etcd-client), the daemon's log, `ip -j link`.
"""

from __future__ import annotations

import base64
import json
import signal
import time
from collections.abc import Iterator

import pytest

from boxnet.lab import LanLab, lan_lab
from boxnet.lab.etcd import EtcdCluster, make_certs, start_etcd

pytestmark = pytest.mark.e2e

ETCD_ADDRESS = "192.168.198.2"  # the LAN's gateway namespace runs etcd
STORE = f"etcd://{ETCD_ADDRESS}:2379"


@pytest.fixture
def lan() -> Iterator[LanLab]:
    lan = lan_lab(2)
    try:
        yield lan
    finally:
        lan.lab.close()


def hosts_in_store(etcd: EtcdCluster) -> dict[str, dict[str, object]]:
    got = etcd.etcdctl("get", "--prefix", "/boxnet/hosts/", "-w", "json").stdout
    out: dict[str, dict[str, object]] = {}
    for kv in json.loads(got).get("kvs", []):
        key = base64.b64decode(kv["key"]).decode()
        out[key] = {**json.loads(base64.b64decode(kv["value"])), "lease": kv.get("lease", 0)}
    return out


def wait_for(predicate: object, what: str, timeout: float = 20.0) -> None:
    """Poll predicate (a callable) until true, bounded."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_hosts_join_and_leave(lan: LanLab) -> None:
    etcd = start_etcd(lan.lab, lan.gateway, ETCD_ADDRESS)
    h1, h2 = lan.hosts
    d1 = lan.lab.boxnetd(h1, "--cluster-store", STORE, "--cluster-advertise", "192.168.198.142")
    d2 = lan.lab.boxnetd(h2, "--cluster-store", STORE, "--cluster-advertise", "192.168.198.143")
    wanted = {"/boxnet/hosts/192.168.198.142", "/boxnet/hosts/192.168.198.143"}
    wait_for(lambda: set(hosts_in_store(etcd)) == wanted, "both hosts in etcd")
    members = hosts_in_store(etcd)
    assert members["/boxnet/hosts/192.168.198.142"]["pid"] == d1.pid
    assert members["/boxnet/hosts/192.168.198.143"]["pid"] == d2.pid
    # Every host key is held by a lease (it expires with a dead host).
    assert all(m["lease"] for m in members.values())
    leases = etcd.etcdctl("lease", "list").stdout
    lease = int(str(members["/boxnet/hosts/192.168.198.142"]["lease"]))
    ttl = json.loads(etcd.etcdctl("lease", "timetolive", format(lease, "x"), "-w", "json").stdout)
    assert 0 < ttl["ttl"] <= 10 and format(lease, "x") in leases
    d2.stop()  # a clean stop revokes the lease: the key goes at once
    assert set(hosts_in_store(etcd)) == {"/boxnet/hosts/192.168.198.142"}
    # -d overlay creates the network's record in etcd (tests/e2e/test_overlay.py does the rest).
    d1.cli("network", "create", "-d", "overlay", "ov")
    got = etcd.etcdctl("get", "/boxnet/networks/ov", "--print-value-only").stdout
    assert json.loads(got)["name"] == "ov" and json.loads(got)["vni"] >= 4096


def test_an_etcd_that_does_not_answer_leaves_local_networks_working(lan: LanLab) -> None:
    h1 = lan.hosts[0]
    d1 = lan.lab.boxnetd(h1, "--cluster-store", STORE, "--cluster-advertise", "192.168.198.142")
    # No etcd yet: the daemon serves, says why the store is missing, and keeps local networks.
    wait_for(lambda: "cluster store: the cluster store does not answer" in d1.log_path.read_text(),
             "the outage in the log")  # fmt: skip
    log = d1.log_path.read_text()
    assert f"{ETCD_ADDRESS}:2379: " in log and "local networks keep working, retrying" in log
    d1.cli("network", "create", "--subnet", "10.99.3.0/24", "local1")
    assert "local1" in d1.cli("network", "ls", "--format", "{{.Name}}").stdout.split()
    # A daemon in an outage still stops on SIGTERM by itself (it does not wait for etcd).
    d2 = lan.lab.boxnetd(lan.hosts[1], "--cluster-store", STORE, "--cluster-advertise",
                         "192.168.198.143")  # fmt: skip
    wait_for(lambda: "local networks keep working" in d2.log_path.read_text(), "d2's outage")
    d2.kill(signal.SIGTERM)
    assert d2.wait(8) == 0
    # etcd comes up: the daemon joins without a restart.
    etcd = start_etcd(lan.lab, lan.gateway, ETCD_ADDRESS)
    wait_for(lambda: "/boxnet/hosts/192.168.198.142" in hosts_in_store(etcd), "the late join")
    assert "cluster store answers again" in d1.log_path.read_text()


def test_the_daemon_joins_over_tls(lan: LanLab) -> None:
    certs = make_certs(lan.lab, [ETCD_ADDRESS])
    etcd = start_etcd(lan.lab, lan.gateway, ETCD_ADDRESS, certs)
    opts = [
        f"kv.cacertfile={certs.ca}",
        f"kv.certfile={certs.client_cert}",
        f"kv.keyfile={certs.client_key}",
    ]
    argv = ["--cluster-store", STORE, "--cluster-advertise", "192.168.198.142"]
    for opt in opts:
        argv += ["--cluster-store-opt", opt]
    d1 = lan.lab.boxnetd(lan.hosts[0], *argv)
    wait_for(lambda: "/boxnet/hosts/192.168.198.142" in hosts_in_store(etcd), "the TLS join")
    assert f"cluster store: https://{ETCD_ADDRESS}:2379" in d1.log_path.read_text()
