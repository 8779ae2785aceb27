"""Issue 18, part 2, across hosts: Docker's own containers on one boxnet overlay network.

One lab for the module (boxnet.lab.overlay): two hosts on the underlay 10.99.0.0/16, a real
etcd in the router, an outside web server at 203.0.113.2; on each host boxnetd in cluster mode
serving the plugin socket, and a dockerd 20.10 of its own (boxnet.lab.dockerd) that uses it.
Each dockerd has a `-d boxnet --ipam-driver boxnet -o boxnet.driver=overlay -o
boxnet.network=ov1` network: the same boxnet overlay behind both, addresses claimed in etcd.

Observers: ping and wget inside Docker's containers, `docker inspect`, `bridge -j fdb` and
`ip -j neigh` on the other host's VXLAN device.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from boxnet.core.dockeripam import GRACE_ENV, SWEEP_ENV
from boxnet.lab import Daemon, Lab
from boxnet.lab.dockerd import DockerEngine
from boxnet.lab.overlay import OUTSIDE, OverlayLab, host_address, overlay_lab

pytestmark = pytest.mark.e2e

OV = "ov1"  # the boxnet overlay network, and each dockerd's network on it
SUBNET = "10.10.0.0/24"
GRACE = 4.0  # Docker IPAM claims no endpoint took expire after this (120 s outside tests)


class Env(NamedTuple):
    lab: OverlayLab
    engines: tuple[DockerEngine, DockerEngine]
    image: str

    def daemon(self, i: int) -> Daemon:
        return self.lab.daemons[i]

    def docker(self, i: int, *args: str, check: bool = True) -> str:
        return self.engines[i].cli(*args, check=check).stdout


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    lab = Lab("docker-plugin-ov")
    engines: list[DockerEngine] = []
    mp = pytest.MonkeyPatch()
    try:
        ovl = overlay_lab(2, lab)
        mp.setenv(GRACE_ENV, str(GRACE))
        for i in range(2):
            engine = DockerEngine(ovl.hosts[i], lab.tmpdir / f"docker{i + 1}")
            # Host 1 expires claims in `boxnet system gc` only (its housekeeping round comes
            # once an hour); host 2's round comes every 2 s (the 2 s tick of its loop).
            mp.setenv(SWEEP_ENV, "3600" if i == 0 else "2")
            ovl.daemon(i, "--docker-plugin-socket", str(engine.plugins / "boxnet.sock"))
            engines.append(engine)
        image = ""
        for engine in engines:
            engine.start()
            image = engine.load_busybox()
        yield Env(ovl, (engines[0], engines[1]), image)
    finally:
        for engine in engines:
            with contextlib.suppress(Exception):
                engine.close()
        lab.close()
        mp.undo()


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def settings(e: Env, i: int, name: str) -> dict[str, Any]:
    info = json.loads(e.docker(i, "inspect", name))[0]
    return dict(info["NetworkSettings"]["Networks"][OV])


def pings(e: Env, i: int, name: str, dest: str) -> bool:
    r = e.engines[i].cli("exec", name, "ping", "-c1", "-W2", dest, check=False)
    return r.returncode == 0


def vni(e: Env, i: int) -> str:
    net = json.loads(e.daemon(i).cli("network", "inspect", OV).stdout)[0]
    return str(net["Options"]["com.docker.network.driver.overlay.vxlanid_list"])


def fdb(e: Env, i: int) -> list[dict[str, Any]]:
    out = e.lab.hosts[i].run(["bridge", "-j", "fdb", "show", "dev", f"vx-{vni(e, i)}"]).stdout
    return list(json.loads(out))


def neigh(e: Env, i: int) -> list[dict[str, Any]]:
    return list(e.lab.hosts[i].ip_json("neigh", "show", "dev", f"vx-{vni(e, i)}"))


def knows(e: Env, i: int, ip: str, mac: str, on_host: int) -> bool:
    """Host i's VXLAN device sends ip/mac to host on_host (programmed FDB and neighbour)."""
    in_fdb = any(x["mac"] == mac and x.get("dst") == host_address(on_host) for x in fdb(e, i))
    in_neigh = any(n["dst"] == ip and n.get("lladdr") == mac for n in neigh(e, i))
    return in_fdb and in_neigh


def test_one_overlay_behind_both_dockerds(env: Env) -> None:
    e = env
    e.docker(0, "network", "create", "-d", "boxnet", "--ipam-driver", "boxnet",
             "--subnet", SUBNET, "-o", "boxnet.driver=overlay", "-o", f"boxnet.network={OV}",
             OV)  # fmt: skip
    # Made once, in etcd: host 2's boxnetd adopts it (from its watcher, or at once when its
    # dockerd asks first); its dockerd then maps a network to it.
    # Without --subnet boxnet's IPAM offers a free pool, not the overlay's: refused, with the
    # command to type (dockerd re-asks forever while a pool overlaps a route of the host).
    r = e.engines[1].cli("network", "create", "-d", "boxnet", "--ipam-driver", "boxnet",
                         "-o", "boxnet.driver=overlay", "-o", f"boxnet.network={OV}", OV,
                         check=False)  # fmt: skip
    assert r.returncode != 0 and f"--subnet {SUBNET}" in r.stderr, r.stderr
    e.docker(1, "network", "create", "-d", "boxnet", "--ipam-driver", "boxnet",
             "--subnet", SUBNET, "-o", "boxnet.driver=overlay", "-o", f"boxnet.network={OV}",
             OV)  # fmt: skip
    subnets = set()
    for i in range(2):
        net = json.loads(e.docker(i, "network", "inspect", OV))[0]
        assert net["Driver"] == "boxnet" and net["Scope"] == "local"
        subnets.add(net["IPAM"]["Config"][0]["Subnet"])
    assert subnets == {SUBNET}
    assert vni(e, 0) == vni(e, 1)
    # Refused with a reason: an overlay without boxnet's IPAM, or without a name.
    r = e.engines[1].cli("network", "create", "-d", "boxnet", "--subnet", "10.10.9.0/24",
                         "-o", "boxnet.driver=overlay", "-o", "boxnet.network=ov9", "x",
                         check=False)  # fmt: skip
    assert r.returncode != 0 and "--ipam-driver boxnet" in r.stderr, r.stderr
    r = e.engines[1].cli("network", "create", "-d", "boxnet", "--ipam-driver", "boxnet",
                         "-o", "boxnet.driver=overlay", "x", check=False)  # fmt: skip
    assert r.returncode != 0 and "boxnet.network=NAME" in r.stderr, r.stderr


def test_containers_on_two_hosts_talk_and_reach_the_outside(env: Env) -> None:
    e = env
    e.docker(0, "run", "-d", "--name", "a1", "--network", OV, e.image, "sleep", "600")
    e.docker(1, "run", "-d", "--name", "b1", "--network", OV, e.image,
             "httpd", "-f", "-p", "80", "-h", "/www")  # fmt: skip
    e.docker(1, "run", "-d", "--name", "b2", "--network", OV, e.image, "sleep", "600")
    a1, b1, b2 = settings(e, 0, "a1"), settings(e, 1, "b1"), settings(e, 1, "b2")
    ips = {a1["IPAddress"], b1["IPAddress"], b2["IPAddress"]}
    # Each dockerd asked boxnet's IPAM, which claims in etcd: distinct across hosts.
    assert len(ips) == 3 and all(ip.startswith("10.10.0.") for ip in ips), ips
    assert all(s["Gateway"] == "10.10.0.1" for s in (a1, b1, b2))
    wait_for(lambda: pings(e, 0, "a1", b1["IPAddress"]), "a1 -> b1 across hosts")
    assert pings(e, 1, "b2", a1["IPAddress"])
    page = e.docker(0, "exec", "a1", "wget", "-qO-", f"http://{b1['IPAddress']}/")
    assert page == "hello from docker\n"
    # The overlay's MTU (underlay 1500 - 50) on the interface dockerd moved in.
    assert e.docker(0, "exec", "a1", "cat", "/sys/class/net/eth0/mtu").strip() == "1450"
    # Out through the local host's masquerade to the lab's outside web server.
    out = e.engines[0].cli("exec", "a1", "wget", "-qO-", f"http://{OUTSIDE}/", check=False)
    assert out.returncode == 0, out.stderr
    # Host 1 knows b1 behind host 2 (programmed from etcd, not learned).
    assert knows(e, 0, b1["IPAddress"], b1["MacAddress"], on_host=1)


def plugin_call(e: Env, i: int, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to boxnetd's plugin socket on host i, as dockerd does (bare HTTP/1.0)."""
    data = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(15)
        conn.connect(str(e.engines[i].plugins / "boxnet.sock"))
        head = f"POST /{method} HTTP/1.0\r\nContent-Length: {len(data)}\r\n\r\n"
        conn.sendall(head.encode() + data)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status, _, rest = reply.partition(b"\r\n")
    assert b" 200 " in status, reply
    return dict(json.loads(rest.partition(b"\r\n\r\n")[2]))


def request_address(e: Env, i: int) -> str:
    """dockerd's RequestAddress for a container on ov1 (no CreateEndpoint follows)."""
    got = plugin_call(e, i, "IpamDriver.RequestAddress", {"PoolID": SUBNET, "Options": {}})
    return str(got["Address"]).split("/")[0]


def ip_claims(e: Env) -> dict[str, str]:
    """address -> holder of every address claim in etcd (etcdctl, not boxnet's code)."""
    assert e.lab.etcd is not None
    lines = e.lab.etcd.etcdctl("get", "--prefix", "/boxnet/ips/").stdout.splitlines()
    pairs = zip(lines[::2], lines[1::2], strict=True)
    return {key.rsplit("/", 1)[1]: value for key, value in pairs}


def test_a_claim_no_endpoint_took_expires(env: Env) -> None:
    """dockerd died between RequestAddress and CreateEndpoint: the claim it left in etcd is
    released once GRACE old, by `boxnet system gc` (host 1) or the housekeeping loop (host 2);
    claims handed to endpoints stay."""
    e = env
    made = time.monotonic()
    ip = request_address(e, 0)
    a1 = settings(e, 0, "a1")["IPAddress"]
    claims = ip_claims(e)
    assert claims[ip].startswith(f"{host_address(0)}/docker-ipam@"), claims
    young = e.daemon(0).cli("system", "gc").stdout
    assert ip not in young and ip in ip_claims(e)  # its endpoint may be on its way
    time.sleep(max(0.0, made + GRACE + 0.5 - time.monotonic()))
    out = e.daemon(0).cli("system", "gc").stdout
    assert f"address {ip} of overlay {OV}" in out, out
    claims = ip_claims(e)
    assert ip not in claims, claims
    # a1's claim was transferred to its endpoint: not provisional, kept; a1 still talks.
    assert a1 in claims and "docker-ipam" not in claims[a1], claims
    assert pings(e, 0, "a1", settings(e, 1, "b1")["IPAddress"])
    # The address is handed out again (the lowest free one); ReleaseAddress gives it back.
    assert request_address(e, 0) == ip
    plugin_call(e, 0, "IpamDriver.ReleaseAddress", {"PoolID": SUBNET, "Address": ip})
    assert ip not in ip_claims(e)
    # Host 2: no gc, its housekeeping round releases it.
    ip2 = request_address(e, 1)
    assert ip_claims(e)[ip2].startswith(f"{host_address(1)}/docker-ipam@")
    wait_for(lambda: ip2 not in ip_claims(e), "host 2's expired claim released", GRACE + 15)
    assert time.monotonic() - made >= GRACE


def test_names_are_dockers_own_per_host(env: Env) -> None:
    """Docker's embedded DNS answers names of its containers on the same host only: a remote
    driver's local-scope network has no cluster-wide name table in dockerd (swarm's gossip is
    what serves them for Docker's own overlay). Across hosts: addresses (docs/CHOICES.md)."""
    e = env
    assert pings(e, 1, "b2", "b1")  # same dockerd
    r = e.engines[0].cli("exec", "a1", "nslookup", "b1", check=False)
    assert r.returncode != 0 or settings(e, 1, "b1")["IPAddress"] not in r.stdout


def test_published_port_and_boxnet_containers_on_the_same_overlay(env: Env) -> None:
    e = env
    # -p on an overlay: boxnet's DNAT on host 2, reached from the outside host.
    e.docker(1, "run", "-d", "--name", "w2", "--network", OV, "-p", "8088:80", e.image,
             "httpd", "-f", "-p", "80", "-h", "/www")  # fmt: skip
    url = f"http://{host_address(1)}:8088/"
    got = e.lab.outside.run(["curl", "-s", "--max-time", "5", url], check=False)
    assert got.returncode == 0 and got.stdout == "hello from docker\n", got.stderr
    # boxnet's own container on host 1 shares the overlay with Docker's on host 2.
    e.daemon(0).cli("run", "-d", "--name", "x1", "--network", OV, "busybox", "sleep", "600")
    b1 = settings(e, 1, "b1")["IPAddress"]
    out = e.daemon(0).cli("exec", "x1", "wget", "-qO-", f"http://{b1}/", check=False)
    assert out.stdout == "hello from docker\n", out.stderr
    x1 = json.loads(e.daemon(0).cli("inspect", "x1").stdout)[0]["NetworkSettings"]["Networks"]
    assert x1[OV]["IPAddress"] not in {b1, settings(e, 0, "a1")["IPAddress"]}
    e.daemon(0).cli("rm", "-f", "x1")
    e.docker(1, "rm", "-f", "w2")


def test_docker_rm_withdraws_the_endpoint_from_the_other_host(env: Env) -> None:
    e = env
    b2 = settings(e, 1, "b2")
    wait_for(lambda: knows(e, 0, b2["IPAddress"], b2["MacAddress"], on_host=1), "b2 known")
    e.docker(1, "rm", "-f", "b2")
    # The VXLAN device's entry (with a remote dst); the bridge's learned ones age on their own.
    gone_fdb = lambda: not any(x["mac"] == b2["MacAddress"] and "dst" in x for x in fdb(e, 0))  # noqa: E731
    gone_neigh = lambda: not any(n["dst"] == b2["IPAddress"] for n in neigh(e, 0))  # noqa: E731
    wait_for(gone_fdb, "b2's FDB entry gone on host 1")
    wait_for(gone_neigh, "b2's neighbour entry gone on host 1")
    assert not pings(e, 0, "a1", b2["IPAddress"])
    # Its address is free again cluster-wide: the next container on host 1 may take it.
    e.docker(0, "run", "-d", "--name", "a2", "--network", OV, e.image, "sleep", "600")
    assert settings(e, 0, "a2")["IPAddress"] == b2["IPAddress"]
    assert pings(e, 0, "a2", settings(e, 1, "b1")["IPAddress"])


def test_boxnetd_restart_leaves_traffic_working(env: Env) -> None:
    e = env
    a1, b1 = settings(e, 0, "a1")["IPAddress"], settings(e, 1, "b1")
    e.daemon(1).restart()
    # Host 2's endpoints are published again (a new membership lease): host 1 still sends
    # b1's traffic to host 2, and both ways work.
    wait_for(lambda: knows(e, 0, b1["IPAddress"], b1["MacAddress"], on_host=1), "b1 again")
    assert pings(e, 0, "a1", b1["IPAddress"])
    assert pings(e, 1, "b1", a1)
    # And host 2's dockerd can use the plugin again.
    e.docker(1, "run", "-d", "--name", "b3", "--network", OV, e.image, "sleep", "600")
    b3 = settings(e, 1, "b3")["IPAddress"]
    assert b3 not in {a1, b1["IPAddress"], settings(e, 0, "a2")["IPAddress"]}
    wait_for(lambda: pings(e, 0, "a1", b3), "a1 -> b3 after the restart")


def test_both_hosts_creating_at_once_get_one_overlay(env: Env) -> None:
    """No order between the hosts: whichever loses the race in etcd (name or subnet) adopts
    what the other made, at once or through its watcher."""
    e = env
    argv = ("network", "create", "-d", "boxnet", "--ipam-driver", "boxnet", "--subnet",
            "10.10.1.0/24", "-o", "boxnet.driver=overlay", "-o", "boxnet.network=ov2",
            "ov2")  # fmt: skip
    results: dict[int, Any] = {}

    def create(i: int) -> None:
        results[i] = e.engines[i].cli(*argv, check=False)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(results[i].returncode == 0 for i in range(2)), results
    ids = {
        json.loads(e.daemon(i).cli("network", "inspect", "ov2").stdout)[0]["Id"] for i in range(2)
    }
    assert len(ids) == 1
    for i in range(2):
        e.docker(i, "network", "rm", "ov2")
    names = lambda i: e.daemon(i).cli("network", "ls", "--format", "{{.Name}}").stdout.split()  # noqa: E731
    wait_for(lambda: "ov2" not in names(0) and "ov2" not in names(1), "ov2 gone")


def test_network_rm_on_the_creating_host_removes_the_overlay(env: Env) -> None:
    e = env
    for i in range(2):
        ids = e.docker(i, "ps", "-aq").split()
        if ids:
            e.docker(i, "rm", "-f", *ids)
    names = lambda i: e.daemon(i).cli("network", "ls", "--format", "{{.Name}}").stdout.split()  # noqa: E731
    # Host 2 adopted it: its Docker network goes, the overlay stays for everyone.
    e.docker(1, "network", "rm", OV)
    assert OV in names(0) and OV in names(1)
    # Host 1 made it: removed cluster-wide (and from host 2's kernel: no vx- device left).
    e.docker(0, "network", "rm", OV)
    wait_for(lambda: OV not in names(1), "ov1 gone on host 2")
    assert not [x for x in e.lab.hosts[1].ip_json("link") if x["ifname"].startswith("vx-")]
