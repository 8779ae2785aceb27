"""Issue 18, part 2, with a real engine: Debian's dockerd 20.10 using boxnet as its network
driver (`docker network create -d boxnet`), through the plugin socket boxnetd serves.

boxnetd and dockerd both run in the lab's "host" namespace; dockerd also in a mount namespace
of its own whose /run/docker/plugins is the lab directory holding boxnetd's `boxnet.sock`
(boxnet.lab.dockerd). Its image is `docker import`ed from busybox-static: nothing downloaded.

Observers: ping and wget inside Docker's containers, HTTP from the lab's outside host to a
published port, `ip -j` (veths on the bridge) and `nft -j` (DNAT map elements) in the host
namespace, and boxnet's own `network inspect` only as the thing under test.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from boxnet.core.dockeripam import GRACE_ENV, SWEEP_ENV
from boxnet.faults import ENV
from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.dockerd import DockerEngine

pytestmark = pytest.mark.e2e

NET = "bnet"
SUBNET = "10.99.60.0/24"
OUTSIDE_URL = "http://203.0.113.1/"
GRACE = 4.0  # Docker IPAM leases no endpoint took expire after this (120 s outside tests)


class Env(NamedTuple):
    lab: Lab
    basic: BasicLab
    daemon: Daemon
    docker: DockerEngine
    image: str

    def run(self, *args: str) -> str:
        return self.docker.cli(*args).stdout

    def d(self, *args: str) -> Any:
        """`docker ARGS` parsed as JSON."""
        return json.loads(self.docker.cli(*args).stdout)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    lab = Lab("docker-plugin")
    engine: DockerEngine | None = None
    mp = pytest.MonkeyPatch()
    try:
        # Expired leases are released by `boxnet system gc` here (the housekeeping round comes
        # once an hour), so the test sees gc's report.
        mp.setenv(GRACE_ENV, str(GRACE))
        mp.setenv(SWEEP_ENV, "3600")
        basic = basic_lab(lab)
        workdir = lab.tmpdir / "docker"
        engine = DockerEngine(basic.host, workdir)
        sock = engine.plugins / "boxnet.sock"
        daemon = lab.boxnetd(basic.host, "--docker-plugin-socket", str(sock))
        engine.start()
        image = engine.load_busybox()
        engine.cli("network", "create", "-d", "boxnet", "--subnet", SUBNET, NET)
        yield Env(lab, basic, daemon, engine, image)
    finally:
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.close()
        lab.close()
        mp.undo()


def ip_of(e: Env, name: str, net: str = NET) -> str:
    info = e.d("inspect", name)[0]
    return str(info["NetworkSettings"]["Networks"][net]["IPAddress"])


def host_veths(e: Env) -> dict[str, Any]:
    """The host's boxnet veths (ip -j), by name."""
    return {x["ifname"]: x for x in e.basic.host.ip_json("link") if x["ifname"].startswith("veth")}


def dnat_elements(e: Env) -> list[str]:
    """Every element of boxnet's nftables maps (nft -j), as text: the DNATs of published ports."""
    out = e.basic.host.run(["nft", "-j", "list", "table", "inet", "boxnet"]).stdout
    found = []
    for item in json.loads(out)["nftables"]:
        for elem in (item.get("map") or {}).get("elem", []):
            found.append(json.dumps(elem))
    return found


def boxnet_network(e: Env, docker_net: str = NET) -> dict[str, Any]:
    """The boxnet network behind a Docker network: `docker-<12 hex of Docker's id>`."""
    docker_id = e.d("network", "inspect", docker_net)[0]["Id"]
    out = e.daemon.cli("network", "inspect", "--format", "json", f"docker-{docker_id[:12]}")
    data = json.loads(out.stdout)
    net = data[0] if isinstance(data, list) else data
    assert net["Labels"]["boxnet.docker.network-id"] == docker_id
    return dict(net)


def test_containers_reach_each_other_and_the_outside(env: Env) -> None:
    e = env
    e.run("run", "-d", "--name", "a1", "--network", NET, e.image, "sleep", "600")
    e.run("run", "-d", "--name", "a2", "--network", NET, e.image, "sleep", "600")
    ip1, ip2 = ip_of(e, "a1"), ip_of(e, "a2")
    assert ip1.startswith("10.99.60.") and ip2.startswith("10.99.60.") and ip1 != ip2
    # dockerd moved the handed-over veth end in and named it eth0, with Docker's address.
    inside = e.run("exec", "a1", "ip", "-o", "-4", "addr", "show", "eth0")
    assert f"{ip1}/24" in inside
    assert "default via 10.99.60.1 dev eth0" in e.run("exec", "a1", "ip", "route")
    assert "1 packets received" in e.run("exec", "a1", "ping", "-c1", "-W2", ip2)
    # Names are Docker's own resolver's (127.0.0.11 in its containers).
    assert "1 packets received" in e.run("exec", "a2", "ping", "-c1", "-W2", "a1")
    # Out through boxnet's masquerade to the lab's outside host.
    got = e.docker.cli("exec", "a1", "wget", "-qO-", OUTSIDE_URL, check=False)
    assert got.returncode == 0, got.stderr
    # boxnet lists them on its network, with Docker's addresses, on its bridge.
    net = boxnet_network(e)
    listed = {v["IPv4Address"] for v in net["Containers"].values()}
    assert {f"{ip1}/24", f"{ip2}/24"} <= listed
    bridge = net["Options"].get("com.docker.network.bridge.name") or ""
    veths = host_veths(e)
    assert len([v for v in veths.values() if v.get("master", "").startswith("br-")]) >= 2, veths
    assert bridge == "" or all(v.get("master") == bridge for v in veths.values())


def test_published_port_answers_from_outside_and_rm_cleans_up(env: Env) -> None:
    e = env
    before = set(host_veths(e))
    e.run(
        "run", "-d", "--name", "web", "--network", NET, "-p", "8080:80", e.image,
        "httpd", "-f", "-p", "80", "-h", "/www",
    )  # fmt: skip
    ip = ip_of(e, "web")
    url = "http://203.0.113.2:8080/"
    got = e.basic.outside.run(["curl", "-s", "--max-time", "5", url], check=False)
    assert got.returncode == 0 and got.stdout == "hello from docker\n", got.stderr
    assert any("8080" in x and ip in x for x in dnat_elements(e))
    new = set(host_veths(e)) - before
    assert len(new) == 1
    e.run("rm", "-f", "web")
    # Docker's Leave/RevokeExternalConnectivity/DeleteEndpoint: no veth, no DNAT, no answer.
    assert not set(host_veths(e)) & new
    assert not any("8080" in x for x in dnat_elements(e))
    gone = e.basic.outside.run(["curl", "-s", "--max-time", "2", url], check=False)
    assert gone.returncode != 0
    assert f"{ip}/24" not in {v["IPv4Address"] for v in boxnet_network(e)["Containers"].values()}


def test_boxnet_container_and_docker_container_share_an_adopted_network(env: Env) -> None:
    e = env
    # A boxnet network, adopted by Docker; Docker's IPAM hands out the upper half only.
    e.daemon.cli("network", "create", "--subnet", "10.99.61.0/24", "shared")
    e.run(
        "network", "create", "-d", "boxnet", "--subnet", "10.99.61.0/24",
        "--gateway", "10.99.61.1", "--ip-range", "10.99.61.128/25",
        "-o", "boxnet.network=shared", "dshared",
    )  # fmt: skip
    e.daemon.cli("run", "-d", "--name", "bx1", "--network", "shared", "busybox", "sleep", "600")
    e.run("run", "-d", "--name", "dk1", "--network", "dshared", e.image, "sleep", "600")
    dk_ip = ip_of(e, "dk1", "dshared")
    assert dk_ip.startswith("10.99.61.1")
    assert "1 packets received" in e.daemon.cli("exec", "bx1", "ping", "-c1", "-W2", dk_ip).stdout
    e.run("rm", "-f", "dk1")
    e.run("network", "rm", "dshared")
    # Adopted, so it stays: boxnet's container is still on it.
    assert "shared" in e.daemon.cli("network", "ls").stdout
    e.daemon.cli("rm", "-f", "bx1")
    e.daemon.cli("network", "rm", "shared")


def request_address(e: Env, pool: str) -> str:
    """dockerd's RequestAddress on boxnetd's plugin socket (bare HTTP/1.0); no CreateEndpoint."""
    data = json.dumps({"PoolID": pool, "Options": {}}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(15)
        conn.connect(str(e.docker.plugins / "boxnet.sock"))
        head = f"POST /IpamDriver.RequestAddress HTTP/1.0\r\nContent-Length: {len(data)}\r\n\r\n"
        conn.sendall(head.encode() + data)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert b" 200 " in reply.partition(b"\r\n")[0], reply
    return str(json.loads(reply.partition(b"\r\n\r\n")[2])["Address"]).split("/")[0]


def test_boxnet_ipam_driver_shares_one_address_space(env: Env) -> None:
    """--ipam-driver boxnet: boxnet's allocator for Docker's containers too, so an adopted
    network needs no --ip-range split, and a pool is picked clear of boxnet's networks."""
    e = env
    e.daemon.cli("network", "create", "--subnet", "10.99.64.0/24", "shared2")
    e.daemon.cli("run", "-d", "--name", "bx2", "--network", "shared2", "busybox", "sleep", "600")
    e.run(
        "network", "create", "-d", "boxnet", "--ipam-driver", "boxnet",
        "--subnet", "10.99.64.0/24", "-o", "boxnet.network=shared2", "dshared2",
    )  # fmt: skip
    e.run("run", "-d", "--name", "dk2", "--network", "dshared2", e.image, "sleep", "600")
    bx_ip = json.loads(e.daemon.cli("inspect", "bx2").stdout)[0]["NetworkSettings"]["Networks"]
    bx_ip = bx_ip["shared2"]["IPAddress"]
    dk_ip = ip_of(e, "dk2", "dshared2")
    assert bx_ip == "10.99.64.2" and dk_ip == "10.99.64.3"
    assert "1 packets received" in e.run("exec", "dk2", "ping", "-c1", "-W2", bx_ip)
    # dockerd asks for an address and dies before CreateEndpoint: the lease expires after
    # GRACE (not before: its endpoint may be on its way), and the address is handed out again.
    made = time.monotonic()
    leaked = request_address(e, "10.99.64.0/24")
    assert leaked == "10.99.64.4"
    assert leaked not in e.daemon.cli("system", "gc").stdout
    assert request_address(e, "10.99.64.0/24") == "10.99.64.5"  # .4 is still held
    time.sleep(max(0.0, time.monotonic() - made + GRACE + 0.5))  # both are GRACE old then
    out = e.daemon.cli("system", "gc").stdout
    assert f"address {leaked} of network shared2" in out, out
    assert "address 10.99.64.5 of network shared2" in out, out
    e.run("run", "-d", "--name", "dk4", "--network", "dshared2", e.image, "sleep", "600")
    assert ip_of(e, "dk4", "dshared2") == leaked
    assert ip_of(e, "dk2", "dshared2") == dk_ip  # the lease its endpoint took stays
    e.run("rm", "-f", "dk4")
    # A pool of boxnet's choosing: none of the subnets boxnet's networks hold.
    e.run("network", "create", "-d", "boxnet", "--ipam-driver", "boxnet", "auto")
    pool = e.d("network", "inspect", "auto")[0]["IPAM"]["Config"][0]["Subnet"]
    assert pool not in {"172.17.0.0/16", "10.99.60.0/24", "10.99.64.0/24"}
    e.run("run", "-d", "--name", "dk3", "--network", "auto", e.image, "sleep", "600")
    assert ip_of(e, "dk3", "auto") == str(ip_interface(pool).network.network_address + 2)
    e.run("rm", "-f", "dk2", "dk3")
    e.run("network", "rm", "dshared2", "auto")
    e.daemon.cli("rm", "-f", "bx2")
    e.daemon.cli("network", "rm", "shared2")


def test_refusals_reach_the_docker_user_and_internal_stays_inside(env: Env) -> None:
    e = env
    bad = e.docker.cli("network", "create", "-d", "boxnet", "-o", "foo=bar", "bad", check=False)
    assert bad.returncode != 0 and "remote: unknown bridge option 'foo'" in bad.stderr
    v6 = ["network", "create", "-d", "boxnet", "--ipv6", "--ipam-driver", "boxnet", "bad6"]
    bad6 = e.docker.cli(*v6, check=False)
    assert bad6.returncode != 0 and "IPAM driver serves IPv4 only" in bad6.stderr
    e.run("network", "create", "-d", "boxnet", "--internal", "--subnet", "10.99.62.0/24", "inner")
    assert boxnet_network(e, "inner")["Internal"] is True
    e.run("run", "-d", "--name", "i1", "--network", "inner", e.image, "sleep", "600")
    e.run("run", "-d", "--name", "i2", "--network", "inner", e.image, "sleep", "600")
    assert "1 packets received" in e.run("exec", "i1", "ping", "-c1", "-W2", "i2")
    out = e.docker.cli("exec", "i1", "ping", "-c1", "-W1", "203.0.113.1", check=False)
    assert out.returncode != 0
    e.run("rm", "-f", "i1", "i2")
    e.run("network", "rm", "inner")


def test_ipv6_network_containers_talk_v6_and_reach_the_outside(env: Env) -> None:
    """`--ipv6` with Docker's IPAM: IPv6Data becomes the boxnet network's IPv6 subnet, Docker's
    IPv6 address the endpoint's, and Join answers GatewayIPv6."""
    e = env
    e.run("network", "create", "-d", "boxnet", "--ipv6", "--subnet", "10.99.65.0/24",
          "--subnet", "fd00:65::/64", "b6")  # fmt: skip
    e.run("run", "-d", "--name", "s1", "--network", "b6", e.image, "sleep", "600")
    e.run("run", "-d", "--name", "s2", "--network", "b6", e.image,
          "httpd", "-f", "-p", "80", "-h", "/www")  # fmt: skip
    s1, s2 = (e.d("inspect", n)[0]["NetworkSettings"]["Networks"]["b6"] for n in ("s1", "s2"))
    v6 = s1["GlobalIPv6Address"]
    assert v6.startswith("fd00:65::") and s2["GlobalIPv6Address"].startswith("fd00:65::")
    assert s1["IPv6Gateway"] == "fd00:65::1"
    assert f"{v6}/64" in e.run("exec", "s1", "ip", "-o", "-6", "addr", "show", "eth0")
    assert "default via fd00:65::1 dev eth0" in e.run("exec", "s1", "ip", "-6", "route")
    # IPv6 between them (after DAD) and to the gateway on boxnet's bridge.
    deadline = time.monotonic() + 10
    while e.docker.cli("exec", "s1", "ping", "-c1", "-W1", s2["GlobalIPv6Address"],
                       check=False).returncode != 0:  # fmt: skip
        assert time.monotonic() < deadline, "s1 -> s2 over IPv6"
    page = e.run("exec", "s1", "wget", "-qO-", f"http://[{s2['GlobalIPv6Address']}]/")
    assert page == "hello from docker\n"
    out = e.docker.cli("exec", "s1", "wget", "-qO-", "http://[2001:db8:203::1]/", check=False)
    assert out.returncode == 0, out.stderr
    listed = {v["IPv6Address"] for v in boxnet_network(e, "b6")["Containers"].values()}
    assert f"{v6}/64" in listed
    e.run("rm", "-f", "s1", "s2")
    e.run("network", "rm", "b6")


def test_network_connect_adds_eth1_and_disconnect_removes_it(env: Env) -> None:
    e = env
    e.run("network", "create", "-d", "boxnet", "--subnet", "10.99.63.0/24", "second")
    e.run("run", "-d", "--name", "n1", "--network", NET, e.image, "sleep", "600")
    e.run("run", "-d", "--name", "n2", "--network", "second", e.image, "sleep", "600")
    before = set(host_veths(e))
    e.run("network", "connect", "second", "n1")
    assert "10.99.63." in e.run("exec", "n1", "ip", "-o", "-4", "addr", "show", "eth1")
    assert "1 packets received" in e.run(
        "exec", "n1", "ping", "-c1", "-W2", ip_of(e, "n2", "second")
    )
    added = set(host_veths(e)) - before
    assert len(added) == 1
    e.run("network", "disconnect", "second", "n1")
    assert "eth1" not in e.run("exec", "n1", "ip", "-o", "link")
    assert not set(host_veths(e)) & added
    e.run("rm", "-f", "n1", "n2")
    e.run("network", "rm", "second")


def test_boxnetd_crash_inside_create_endpoint_leaks_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = env
    before = set(host_veths(e))
    monkeypatch.setenv(ENV, "external.attach.joined")  # dies after the veth pair, before records
    e.daemon.restart()
    failed = e.docker.cli("run", "-d", "--name", "x1", "--network", NET, e.image, "sleep", "600",
                          check=False)  # fmt: skip
    assert failed.returncode != 0
    assert e.daemon.wait(10) is not None, "boxnetd did not crash"
    monkeypatch.delenv(ENV)
    e.daemon.start()  # its start-up gc removes the ownerless veth
    assert e.daemon.pending_intents() == []
    assert set(host_veths(e)) == before
    e.run("rm", "-f", "x1")
    e.run("run", "-d", "--name", "x1", "--network", NET, e.image, "sleep", "600")
    assert len(set(host_veths(e)) - before) == 1
    e.run("rm", "-f", "x1")
    assert set(host_veths(e)) == before


def test_boxnetd_restart_keeps_containers_and_serves_again(env: Env) -> None:
    e = env
    e.run("run", "-d", "--name", "r1", "--network", NET, "-p", "8081:80", e.image,
          "httpd", "-f", "-p", "80", "-h", "/www")  # fmt: skip
    e.daemon.restart()
    url = "http://203.0.113.2:8081/"
    got = e.basic.outside.run(["curl", "-s", "--max-time", "5", url], check=False)
    assert got.returncode == 0 and got.stdout == "hello from docker\n", got.stderr
    # New containers after the restart: the plugin socket is served again.
    e.run("run", "-d", "--name", "r2", "--network", NET, e.image, "sleep", "600")
    assert "1 packets received" in e.run("exec", "r2", "ping", "-c1", "-W2", ip_of(e, "r1"))
    before = set(host_veths(e))
    e.run("rm", "-f", "r1", "r2")
    assert len(before - set(host_veths(e))) == 2
    assert not any("8081" in x for x in dnat_elements(e))


def test_dockerd_restart_leaves_things_working(env: Env) -> None:
    e = env
    e.run("run", "-d", "--name", "k1", "--restart", "always", "--network", NET, "-p",
          "8082:80", e.image, "httpd", "-f", "-p", "80", "-h", "/www")  # fmt: skip
    e.docker.restart()
    # Its old endpoint was deleted (dockerd cleans its sandboxes) and it came back on a new one.
    running = {c.strip() for c in e.run("ps", "--format", "{{.Names}}").split()}
    assert "k1" in running, running
    url = "http://203.0.113.2:8082/"
    got = e.basic.outside.run(["curl", "-s", "--max-time", "5", url], check=False)
    assert got.returncode == 0 and got.stdout == "hello from docker\n", got.stderr
    e.run("run", "-d", "--name", "k2", "--network", NET, e.image, "sleep", "600")
    assert "1 packets received" in e.run("exec", "k2", "ping", "-c1", "-W2", "k1")
    # One veth per running container on the network, none left from before the restart.
    names = e.run("ps", "-q", "--filter", f"network={NET}").split()
    bridged = [v for v in host_veths(e).values() if v.get("master", "").startswith("br-")]
    assert len(bridged) == len(names), (bridged, names)


def test_network_rm_removes_the_bridge(env: Env) -> None:
    e = env
    ids = e.run("ps", "-aq").split()
    if ids:
        e.run("rm", "-f", *ids)
    bridge = boxnet_network(e)["Options"].get("com.docker.network.bridge.name")
    br_before = {x["ifname"] for x in e.basic.host.ip_json("link") if x["ifname"].startswith("br-")}
    e.run("network", "rm", NET)
    br_after = {x["ifname"] for x in e.basic.host.ip_json("link") if x["ifname"].startswith("br-")}
    assert len(br_before - br_after) == 1, (bridge, br_before, br_after)
    assert not host_veths(e)


def test_stopping_dockerd_leaves_nothing_behind(env: Env) -> None:
    """Last: the engine's own teardown, checked from outside (processes, mounts, /run)."""
    e = env
    pid = e.docker.pid
    e.docker.close()
    assert not Path(f"/proc/{pid}").exists()
    workdir = str(e.docker.workdir)
    leftovers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != e.daemon.pid:  # boxnetd names it too
            with contextlib.suppress(OSError):
                line = (entry / "cmdline").read_bytes().decode(errors="replace")
                if workdir in line:
                    leftovers.append(f"{entry.name}: {line.replace(chr(0), ' ')}")
    assert leftovers == []  # containerd and its shims went with dockerd
    mounts = Path("/proc/self/mountinfo").read_text()
    assert workdir not in mounts and " /run/docker" not in mounts
