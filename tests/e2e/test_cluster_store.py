"""Issue 16, step 1-2: a real etcd (Debian's etcd-server 3.4) in lab namespaces, and boxnet's
cluster store client (boxnet.cluster.EtcdStore, v3 API over the JSON gateway) against it.

The client runs inside a lab namespace (the venv's python under nsenter), since etcd listens on
lab addresses only. Observers: etcdctl (Debian's etcd-client) reads back what the client wrote,
writes what the client must see, and lists leases; a killed member must not stop the client.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from ipaddress import IPv4Network

import pytest

from boxnet.lab import LanLab, lan_lab
from boxnet.lab.daemon import venv_bin
from boxnet.lab.etcd import EtcdCluster, make_certs, start_etcd, start_etcd_cluster
from boxnet.lab.netns import Netns

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lan() -> Iterator[LanLab]:
    lan = lan_lab(3)
    try:
        yield lan
    finally:
        lan.lab.close()


def run_client(ns: Netns, endpoints: str, body: str) -> dict[str, object]:
    """Run body with `store` = EtcdStore(endpoints) inside ns; it fills `out`, printed as JSON."""
    script = (
        "import json\n"
        "from boxnet.cluster import EtcdStore, ClusterStoreError, ClusterStoreUnavailable\n"
        "from boxnet.config.clustervalues import parse_cluster_store\n"
        f"store = EtcdStore(parse_cluster_store({endpoints!r}), attempts=3, timeout=1.0)\n"
        "out = {}\n" + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    )
    done = ns.run([str(venv_bin() / "python"), "-c", script], timeout=60)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_one_member_keys_txn_lease_watch(lan: LanLab) -> None:
    etcd = start_etcd(lan.lab, lan.gateway, "192.168.198.2")
    client = lan.workstation
    assert etcd.store_url == "etcd://192.168.198.2:2379"
    etcd.etcdctl("put", "/boxnet/from-etcdctl", "seen")
    out = run_client(
        client,
        etcd.store_url,
        """
        rev = store.put("/boxnet/networks/a", b"alpha")
        out["rev"] = rev
        out["get"] = store.get("/boxnet/networks/a").value.decode()
        out["other"] = store.get("/boxnet/from-etcdctl").value.decode()
        out["missing"] = store.get("/boxnet/nothing") is None
        out["create_first"] = store.create("/boxnet/vni/4097", b"a")
        out["create_again"] = store.create("/boxnet/vni/4097", b"b")
        kv = store.get("/boxnet/networks/a")
        out["cas_stale"] = store.compare_and_put("/boxnet/networks/a", kv.mod_revision - 1, b"x")
        out["cas_ok"] = store.compare_and_put("/boxnet/networks/a", kv.mod_revision, b"beta")
        kvs, read_at = store.get_prefix("/boxnet/networks/")
        out["prefix"] = [(k.key, k.value.decode()) for k in kvs]
        lease = store.grant_lease(30)
        store.put("/boxnet/endpoints/e1", b"mac", lease=lease)
        out["lease_ttl"] = store.keep_alive(lease)
        out["lease"] = lease
        store.put("/boxnet/networks/b", b"bee")
        store.delete("/boxnet/networks/a")
        events = store.watch("/boxnet/networks/", read_at + 1)
        out["events"] = [(e.kind, e.key, e.value.decode()) for e in (next(events), next(events))]
        out["unknown_lease_ttl"] = store.keep_alive(12345)  # etcd: TTL 0, no error
        try:
            store.revoke_lease(12345)
        except ClusterStoreError as err:
            out["bad_lease"] = err.message
        """,
    )
    assert out["get"] == "alpha" and out["other"] == "seen" and out["missing"] is True
    assert (out["create_first"], out["create_again"]) == (True, False)
    assert (out["cas_stale"], out["cas_ok"]) == (False, True)
    assert out["prefix"] == [["/boxnet/networks/a", "beta"]]
    assert out["events"] == [
        ["put", "/boxnet/networks/b", "bee"],
        ["delete", "/boxnet/networks/a", ""],
    ]
    assert isinstance(out["lease_ttl"], int) and 0 < out["lease_ttl"] <= 30
    # Independent observer: etcdctl sees what the client wrote, and the key's lease.
    assert etcd.etcdctl("get", "--print-value-only", "/boxnet/vni/4097").stdout.strip() == "a"
    assert etcd.etcdctl("get", "--print-value-only", "/boxnet/networks/a").stdout.strip() == ""
    leases = etcd.etcdctl("lease", "list").stdout
    assert format(int(str(out["lease"])), "x") in leases
    got = json.loads(etcd.etcdctl("get", "-w", "json", "/boxnet/endpoints/e1").stdout)
    assert got["kvs"][0]["lease"] == out["lease"]
    # A revoked lease takes its keys with it (how a departed host's endpoints disappear).
    run_client(client, etcd.store_url, f"store.revoke_lease({out['lease']})")
    assert "kvs" not in json.loads(etcd.etcdctl("get", "-w", "json", "/boxnet/endpoints/e1").stdout)
    assert out["unknown_lease_ttl"] == 0
    assert (
        out["bad_lease"] == "etcd refused /v3/lease/revoke: etcdserver: requested lease not found"
    )
    for member in etcd.members:
        member.stop()


def test_unreachable_store_is_a_clear_error(lan: LanLab) -> None:
    out = run_client(
        lan.workstation,
        "etcd://192.168.198.2:2379,192.168.198.143:2379",
        """
        try:
            store.get("/boxnet/x")
        except ClusterStoreUnavailable as err:
            out["message"], out["hint"] = err.message, err.hint
        """,
    )
    message = str(out["message"])
    assert message.startswith("the cluster store does not answer (192.168.198.2:2379: ")
    assert "192.168.198.143:2379: " in message and "tried 3 times" in message
    assert "Connection refused" in message
    assert "--cluster-store" in str(out["hint"])


def test_three_members_one_down(lan: LanLab) -> None:
    cluster: EtcdCluster = start_etcd_cluster(
        lan.lab, [(host, f"192.168.198.{142 + i}") for i, host in enumerate(lan.hosts)]
    )
    members = json.loads(cluster.etcdctl("member", "list", "-w", "json").stdout)["members"]
    assert len(members) == 3
    cluster.members[0].stop()  # the first endpoint the client tries is dead
    out = run_client(
        lan.workstation,
        cluster.store_url,
        """
        out["create"] = store.create("/boxnet/subnets/10.0.1.0-24", b"ov")
        out["get"] = store.get("/boxnet/subnets/10.0.1.0-24").value.decode()
        """,
    )
    assert out == {"create": True, "get": "ov"}
    observer = cluster.etcdctl  # etcdctl against the members still up
    got = observer("get", "--print-value-only", "/boxnet/subnets/10.0.1.0-24", ns=lan.workstation)
    assert got.stdout.strip() == "ov"


CLAIMS = """
import json, sys
from ipaddress import IPv4Network
from boxnet.cluster import EtcdStore
from boxnet.cluster import allocate
from boxnet.config.clustervalues import parse_cluster_store
store = EtcdStore(parse_cluster_store(sys.argv[1]), attempts=3, timeout=2.0)
me = sys.argv[2]
pools = [(IPv4Network("10.99.0.0/16"), 24)]
subnets = [str(allocate.claim_subnet(store, f"{me}-{i}", pools)) for i in range(6)]
vnis = [allocate.claim_vni(store, f"{me}-{i}") for i in range(6)]
subnet = IPv4Network("10.99.200.0/24")
ips = [str(allocate.claim_address(store, "net1", subnet, f"{me}-{i}")) for i in range(10)]
print(json.dumps({"subnets": subnets, "vnis": vnis, "ips": ips}))
"""


def test_two_hosts_claiming_at_once_never_collide(lan: LanLab) -> None:
    etcd = start_etcd(lan.lab, lan.gateway, "192.168.198.2")
    try:
        argv = [str(venv_bin() / "python"), "-c", CLAIMS, etcd.store_url]
        procs = [
            host.popen([*argv, host.role], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for host in lan.hosts
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()
            results.append(json.loads(out))
        subnets = [IPv4Network(s) for r in results for s in r["subnets"]]
        assert len(subnets) == 18
        for i, a in enumerate(subnets):
            assert a.prefixlen == 24 and a.subnet_of(IPv4Network("10.99.0.0/16"))
            assert not any(a.overlaps(b) for b in subnets[:i]), a
        vnis = [v for r in results for v in r["vnis"]]
        assert sorted(vnis) == list(range(4096, 4096 + 18))
        ips = [ip for r in results for ip in r["ips"]]
        assert len(set(ips)) == 30 and "10.99.200.1" not in ips  # .1: the gateway
        # Independent observer: etcdctl reads the claims as stored.
        stored = json.loads(etcd.etcdctl("get", "--print-value-only", "/boxnet/subnets").stdout)
        assert sorted(stored) == sorted(str(s) for s in subnets)
        keys = etcd.etcdctl("get", "--prefix", "--keys-only", "/boxnet/vni/").stdout.split()
        assert len(keys) == 18
        # A requested subnet that overlaps a claimed one is refused, naming its owner.
        out = run_client(
            lan.workstation,
            etcd.store_url,
            """
            from ipaddress import IPv4Network
            from boxnet.cluster import allocate
            from boxnet.errors import Conflict
            try:
                allocate.claim_subnet(store, "late", [], IPv4Network("10.99.0.0/23"))
            except Conflict as err:
                out["message"] = err.message
            """,
        )
        assert str(out["message"]).startswith("subnet 10.99.0.0/23 overlaps 10.99.0.0/24 of")
    finally:
        for member in etcd.members:
            member.stop()


WATCH = """
import json, sys, threading
from boxnet.cluster import EtcdStore
from boxnet.cluster.networks import NetworkWatcher
from boxnet.config.clustervalues import parse_cluster_store
store = EtcdStore(parse_cluster_store(sys.argv[1]), attempts=3, timeout=2.0)
seen = threading.Event()
def changed(view):
    print(json.dumps(sorted((n.name, n.vni, n.subnet) for n in view.values())), flush=True)
    if sorted(view) == ["ov1", "ov2"]:
        seen.set()
watcher = NetworkWatcher(store, changed)
watcher.start()
print("ready", flush=True)
seen.wait(30)
"""

CREATE_SAME_NAME = """
import json, sys
from ipaddress import IPv4Network
from boxnet.cluster import EtcdStore
from boxnet.cluster.networks import create_network
from boxnet.config.clustervalues import parse_cluster_store
from boxnet.errors import Conflict
store = EtcdStore(parse_cluster_store(sys.argv[1]), attempts=3, timeout=2.0)
pools = [(IPv4Network("10.99.0.0/16"), 24)]
results = []
for i in range(5):
    try:
        net = create_network(store, f"{sys.argv[2]}-{i}", f"race{i}", sys.argv[2], pools)
        results.append(["won", net.vni, net.subnet])
    except Conflict as err:
        results.append(["lost", err.message])
print(json.dumps(results))
"""


def test_overlay_networks_are_seen_by_other_hosts_and_names_are_unique(lan: LanLab) -> None:
    etcd = start_etcd(lan.lab, lan.gateway, "192.168.198.2")
    try:
        python = str(venv_bin() / "python")
        h1, h2, h3 = lan.hosts
        watcher = h2.popen([python, "-c", WATCH, etcd.store_url], stdout=subprocess.PIPE, text=True)
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready"
        out = run_client(
            h1,
            etcd.store_url,
            """
            from ipaddress import IPv4Network
            from boxnet.cluster.networks import create_network, remove_network
            from boxnet.errors import Conflict
            pools = [(IPv4Network("10.99.0.0/16"), 24)]
            one = create_network(store, "id1", "ov1", "192.168.198.142", pools)
            two = create_network(store, "id2", "ov2", "192.168.198.142", pools,
                                 IPv4Network("10.99.100.0/24"))
            out["one"] = [one.vni, one.subnet, one.gateway]
            out["two"] = [two.vni, two.subnet, two.gateway]
            try:
                create_network(store, "id3", "ov1", "192.168.198.142", pools)
            except Conflict as err:
                out["dup"] = err.message
            tmp = create_network(store, "id4", "tmp", "192.168.198.142", pools)
            remove_network(store, "tmp")
            out["tmp_vni"] = tmp.vni
            """,
        )
        assert out["one"] == [4096, "10.99.0.0/24", "10.99.0.1"]
        assert out["two"] == [4097, "10.99.100.0/24", "10.99.100.1"]
        assert out["dup"] == "network with name ov1 already exists in the cluster"
        stdout, _ = watcher.communicate(timeout=40)
        views = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        assert views[-1] == [["ov1", 4096, "10.99.0.0/24"], ["ov2", 4097, "10.99.100.0/24"]]
        # The removed network gave back its VNI and subnet (etcdctl observes the store).
        vnis = etcd.etcdctl("get", "--prefix", "--keys-only", "/boxnet/vni/").stdout.split()
        assert vnis == ["/boxnet/vni/4096", "/boxnet/vni/4097"]
        subnets = json.loads(etcd.etcdctl("get", "--print-value-only", "/boxnet/subnets").stdout)
        assert sorted(subnets) == ["10.99.0.0/24", "10.99.100.0/24"]
        # Two hosts create the same five names at once: each name is won exactly once, and the
        # losers' VNIs and subnets are given back.
        argv = [python, "-c", CREATE_SAME_NAME, etcd.store_url]
        racers = [h.popen([*argv, h.role], stdout=subprocess.PIPE) for h in (h1, h3)]
        results = [json.loads(p.communicate(timeout=60)[0]) for p in racers]
        for i in range(5):
            outcomes = sorted(r[i][0] for r in results)
            assert outcomes == ["lost", "won"], (i, results)
        names = etcd.etcdctl("get", "--prefix", "--keys-only", "/boxnet/networks/").stdout.split()
        assert sorted(names) == sorted(
            ["/boxnet/networks/ov1", "/boxnet/networks/ov2"]
            + [f"/boxnet/networks/race{i}" for i in range(5)]
        )
        vnis = etcd.etcdctl("get", "--prefix", "--keys-only", "/boxnet/vni/").stdout.split()
        assert len(vnis) == 7
        subnets = json.loads(etcd.etcdctl("get", "--print-value-only", "/boxnet/subnets").stdout)
        assert len(subnets) == 7
    finally:
        for member in etcd.members:
            member.stop()


def test_tls_with_client_certificates(lan: LanLab) -> None:
    certs = make_certs(lan.lab, ["192.168.198.2"])
    etcd = start_etcd(lan.lab, lan.gateway, "192.168.198.2", certs)
    try:
        tls = f"TlsFiles({str(certs.ca)!r}, {str(certs.client_cert)!r}, {str(certs.client_key)!r})"
        out = run_client(
            lan.workstation,
            etcd.store_url,
            f"""
            from boxnet.cluster import TlsFiles
            secure = EtcdStore(store.endpoints, {tls}, attempts=2, timeout=2.0)
            secure.put("/boxnet/tls", b"yes")
            out["get"] = secure.get("/boxnet/tls").value.decode()
            no_cert = EtcdStore(store.endpoints, TlsFiles({str(certs.ca)!r}), attempts=2)
            try:
                no_cert.get("/boxnet/tls")
            except ClusterStoreUnavailable as err:
                out["no_cert"] = err.message
            try:
                store.get("/boxnet/tls")  # plain HTTP to a TLS port
            except ClusterStoreUnavailable as err:
                out["plain"], out["plain_hint"] = err.message, err.hint
            """,
        )
        assert out["get"] == "yes"
        assert etcd.etcdctl("get", "--print-value-only", "/boxnet/tls").stdout.strip() == "yes"
        assert "192.168.198.2:2379: " in str(out["no_cert"])
        # etcd with client-cert-auth hangs up on plain HTTP; the hint names the TLS option.
        assert str(out["plain"]).startswith("the cluster store does not answer (192.168.198.2")
        assert "--cluster-store-opt kv.cacertfile=PATH" in str(out["plain_hint"])
        assert "TLS handshake failed" in str(out["no_cert"]), out["no_cert"]
    finally:
        for member in etcd.members:
            member.stop()
