"""Issue 4 end to end: user-defined networks, IPAM, per-network options, connect/disconnect.

One lab (host + outside + client2) and one boxnetd for the module; the tests build on each other
in file order (lamp/lnmp first, as in the tutorial). Observers: `ip -j` in the lab's host
namespace and in containers (the `host` image has iproute2), real pings and HTTP requests whose
client address the outside echo server reports.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

Env = tuple[BasicLab, Daemon]


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    backend = ["--firewall-backend", request.param]  # the same suite under both backends
    lab = Lab(f"networks-{request.param[:3]}")
    try:
        basic = basic_lab(lab)
        yield basic, lab.boxnetd(basic.host, *backend)
    finally:
        lab.close()


def net_inspect(d: Daemon, ref: str) -> dict[str, Any]:
    data = json.loads(d.cli("network", "inspect", "--format", "json", ref).stdout)
    return data[0] if isinstance(data, list) else data


def ip_of(d: Daemon, name: str, network: str | None = None) -> str:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    data = data[0] if isinstance(data, list) else data
    nets = data["NetworkSettings"]["Networks"]
    return str(nets[network]["IPAddress"] if network else data["NetworkSettings"]["IPAddress"])


def pings(d: Daemon, name: str, dest: str) -> bool:
    return d.cli("exec", name, "ping", "-c1", "-W1", dest, check=False).returncode == 0


def host_addrs(basic: BasicLab) -> dict[str, set[str]]:
    return {
        link["ifname"]: {
            f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"
        }
        for link in basic.host.ip_json("addr")
    }


def inner_json(d: Daemon, name: str, *args: str) -> Any:
    """`ip -j ARGS` inside a container made from the `host` image (real iproute2)."""
    return json.loads(d.cli("exec", name, "ip", "-j", *args).stdout)


def api_post(d: Daemon, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """A bare HTTP POST on the daemon's socket: Docker's API shapes, no boxnet client code."""
    import socket

    payload = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(d.socket))
        conn.sendall(
            f"POST {path} HTTP/1.0\r\nHost: boxnet\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        raw = b"".join(iter(lambda: conn.recv(65536), b""))
    head, _, rest = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


# -- 1. create / ls / inspect / rm / prune ------------------------------------------------------
def test_lamp_and_lnmp_get_the_next_subnets_and_their_own_bridges(env: Env) -> None:
    basic, d = env
    lamp = d.cli("network", "create", "-d", "bridge", "lamp").stdout.strip()
    lnmp = d.cli("network", "create", "-d", "bridge", "lnmp").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", lamp) and re.fullmatch(r"[0-9a-f]{64}", lnmp)
    addrs = host_addrs(basic)
    assert addrs[f"br-{lamp[:12]}"] == {"172.18.0.1/16"}
    assert addrs[f"br-{lnmp[:12]}"] == {"172.19.0.1/16"}
    kinds = {
        x["ifname"]: x.get("linkinfo", {}).get("info_kind")
        for x in basic.host.ip_json("-d", "link")
    }
    assert kinds[f"br-{lamp[:12]}"] == "bridge"
    ls = d.cli("network", "ls").stdout.splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = {line.split()[1]: line.split() for line in ls[1:]}
    assert set(rows) == {"bridge", "host", "none", "lamp", "lnmp"}
    assert rows["lamp"] == [lamp[:12], "lamp", "bridge", "local"]
    assert rows["host"][2:] == ["host", "local"] and rows["none"][2:] == ["null", "local"]
    # Names, full ids and 12-hex prefixes all resolve; inspect shows Docker's IPAM shape.
    for ref in ("lamp", lamp, lamp[:12]):
        info = net_inspect(d, ref)
        assert info["Id"] == lamp
        assert info["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]
    dup = d.cli("network", "create", "lamp", check=False)
    assert dup.returncode == 1 and "network with name lamp already exists" in dup.stderr


def test_lamp_and_lnmp_are_isolated_but_reach_host_and_outside(env: Env) -> None:
    _basic, d = env
    d.cli("run", "-d", "--name", "tomcat1", "--network=lamp", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "tomcat2", "--network=lnmp", "busybox", "sleep", "1000")
    assert ip_of(d, "tomcat1") == "172.18.0.2" and ip_of(d, "tomcat2") == "172.19.0.2"
    assert not pings(d, "tomcat1", "172.19.0.2")
    assert not pings(d, "tomcat2", "172.18.0.2")
    for name in ("tomcat1", "tomcat2"):
        assert pings(d, name, "203.0.113.2"), f"{name} cannot reach the host"
        assert pings(d, name, "203.0.113.1"), f"{name} cannot reach the outside"
    out = d.cli("exec", "tomcat2", "wget", "-qO-", "http://203.0.113.1/").stdout
    assert json.loads(out)["client"] == "203.0.113.2"  # masqueraded behind the host


def test_rm_of_a_network_in_use_is_refused_and_prune_keeps_it(env: Env) -> None:
    basic, d = env
    lamp = net_inspect(d, "lamp")["Id"]
    res = d.cli("network", "rm", "lamp", check=False)
    assert res.returncode == 1
    assert f"network lamp id {lamp} has active endpoints" in res.stderr
    d.cli("network", "create", "spare")
    spare = net_inspect(d, "spare")["Id"]
    out = d.cli("network", "prune", "-f").stdout
    assert out.split() == ["Deleted", "Networks:", "spare"]
    assert f"br-{spare[:12]}" not in host_addrs(basic)
    assert f"br-{lamp[:12]}" in host_addrs(basic)
    assert d.cli("network", "rm", "bridge", check=False).returncode == 1


# -- 2. IPAM --------------------------------------------------------------------------------------
def test_pool_skips_a_routed_subnet_and_says_which_freed_subnets_come_back(env: Env) -> None:
    basic, d = env
    basic.host.ip("route", "add", "172.20.0.0/16", "via", "203.0.113.1")
    try:
        res = d.cli("network", "create", "third")
        assert "172.20.0.0/16 overlaps a route to 172.20.0.0/16" in res.stderr
        assert net_inspect(d, "third")["IPAM"]["Config"][0]["Subnet"] == "172.21.0.0/16"
        clash = d.cli("network", "create", "--subnet", "172.20.5.0/24", "clash", check=False)
        assert clash.returncode == 1 and "a route to 172.20.0.0/16" in clash.stderr
    finally:
        basic.host.ip("route", "del", "172.20.0.0/16")
    d.cli("network", "rm", "third")
    d.cli("network", "create", "fourth")
    assert net_inspect(d, "fourth")["IPAM"]["Config"][0]["Subnet"] == "172.20.0.0/16"
    d.cli("network", "rm", "fourth")
    d.cli("network", "create", "fifth")  # 172.20 is free again, and so is it once more
    assert net_inspect(d, "fifth")["IPAM"]["Config"][0]["Subnet"] == "172.20.0.0/16"
    d.cli("network", "rm", "fifth")


def test_warnings_belong_to_their_own_create(env: Env) -> None:
    """A create's warning is returned with it: the next create (here a macvlan one, which once
    echoed the previous bridge create's) says nothing it has not found itself."""
    basic, d = env
    basic.host.ip("route", "add", "172.16.0.0/12", "via", "203.0.113.1")  # every 172 pool
    try:
        warned = d.cli("network", "create", "warned").stderr
        assert "skipped 172." in warned and "overlaps a route to 172.16.0.0/12" in warned
        lan = d.cli(
            "network", "create", "-d", "macvlan", "-o", "parent=eth0",
            "--subnet", "203.0.113.0/24", "quiet",
        )  # fmt: skip
        assert lan.stderr == ""
        request = {
            "Name": "quiet2",
            "Driver": "macvlan",
            "Options": {"parent": "eth0"},
            "IPAM": {"Config": [{"Subnet": "203.0.113.0/24"}]},
        }
        status, body = api_post(d, "/networks/create", request)
        assert status == 201 and json.loads(body)["Warning"] == ""
    finally:
        basic.host.ip("route", "del", "172.16.0.0/12")
    for name in ("warned", "quiet", "quiet2"):
        d.cli("network", "rm", name)


def test_no_family_and_macvlan_ipv6_are_refused(env: Env) -> None:
    """A network without any address family, and what IPv6 cannot do yet, are refused with the
    reason, never accepted and ignored; nothing is left behind (no record, no bridge). (IPv6
    itself: tests/e2e/test_ipv6*.py.)"""
    basic, d = env
    before = {x["ifname"] for x in basic.host.ip_json("link")}
    status, body = api_post(d, "/networks/create", {"Name": "v6net", "EnableIPv4": False})
    assert status == 400 and b"--ipv4=false (EnableIPv4) without --ipv6" in body
    res = d.cli("network", "create", "-d", "macvlan", "--ipv6", "-o", "parent=eth0", "v6net",
                check=False)  # fmt: skip
    assert res.returncode == 1
    assert "IPv6 networks of the macvlan driver are not supported yet" in res.stderr
    assert "Traceback" not in res.stderr
    assert d.cli("network", "inspect", "v6net", check=False).returncode == 1
    assert {x["ifname"] for x in basic.host.ip_json("link")} == before


def test_subnet_gateway_ip_range_aux_address_and_static_ip(env: Env) -> None:
    basic, d = env
    d.cli(
        "network", "create", "--subnet", "10.50.0.0/24", "--gateway", "10.50.0.254",
        "--ip-range", "10.50.0.128/25", "--aux-address", "printer=10.50.0.128", "custom",
    )  # fmt: skip
    info = net_inspect(d, "custom")
    assert info["IPAM"]["Config"][0]["Gateway"] == "10.50.0.254"
    assert info["Options"] == {}  # none given, none shown (compose compares them)
    bridge = "br-" + info["Id"][:12]
    assert host_addrs(basic)[bridge] == {"10.50.0.254/24"}
    d.cli("run", "-d", "--name", "dyn", "--network", "custom", "host", "sleep", "1000")
    addrs = inner_json(d, "dyn", "-4", "addr", "show", "dev", "eth0")[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs] == [("10.50.0.129", 24)]
    routes = inner_json(d, "dyn", "-4", "route")
    assert {"dst": "default", "gateway": "10.50.0.254"}.items() <= routes[0].items()
    d.cli("run", "-d", "--name", "fixed", "--network", "custom", "--ip", "10.50.0.7",
          "busybox", "sleep", "1000")  # fmt: skip
    assert "inet 10.50.0.7/24" in d.cli("exec", "fixed", "ip", "-o", "-4", "addr").stdout
    assert pings(d, "fixed", "10.50.0.129")
    bad = d.cli("run", "--rm", "--network", "custom", "--ip", "10.60.0.1", "busybox", "true",
                check=False)  # fmt: skip
    assert bad.returncode == 125 and "not in the network's subnet 10.50.0.0/24" in bad.stderr
    taken = d.cli("run", "--rm", "--network", "custom", "--ip", "10.50.0.7", "busybox", "true",
                  check=False)  # fmt: skip
    assert taken.returncode == 125 and "Address already in use" in taken.stderr
    d.cli("rm", "-f", "dyn", "fixed")
    d.cli("network", "rm", "custom")


def test_static_address_is_never_handed_out_also_across_restarts(env: Env) -> None:
    _basic, d = env
    d.cli("network", "create", "--subnet", "10.51.0.0/29", "tiny")  # hosts .1-.6, gateway .1
    d.cli("run", "-d", "--name", "pinned", "--network", "tiny", "--ip", "10.51.0.2",
          "busybox", "sleep", "1000")  # fmt: skip
    d.cli("stop", "-t", "0", "pinned")
    d.restart()
    got = []
    for i in range(4):  # .3 .. .6: the whole rest of the subnet, never .2
        d.cli("run", "-d", "--name", f"dyn{i}", "--network", "tiny", "busybox", "sleep", "1000")
        got.append(ip_of(d, f"dyn{i}"))
    assert sorted(got) == ["10.51.0.3", "10.51.0.4", "10.51.0.5", "10.51.0.6"]
    full = d.cli("run", "--rm", "--network", "tiny", "busybox", "true", check=False)
    assert full.returncode == 125 and "no available IPv4 addresses" in full.stderr
    d.cli("start", "pinned")
    assert "inet 10.51.0.2/29" in d.cli("exec", "pinned", "ip", "-o", "-4", "addr").stdout
    d.cli("rm", "-f", "pinned", "dyn0", "dyn1", "dyn2", "dyn3")
    d.cli("network", "rm", "tiny")


def test_twenty_parallel_runs_get_distinct_addresses(env: Env) -> None:
    basic, d = env
    d.cli("network", "create", "par")
    names = [f"par{i}" for i in range(20)]

    def run(name: str) -> None:
        d.cli("run", "-d", "--name", name, "--network", "par", "busybox", "sleep", "1000")

    def seen(name: str) -> str:
        out = d.cli("exec", name, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
        return out.split("inet ", 1)[1].split("/", 1)[0]

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(run, names))
        inside = list(pool.map(seen, names))
    assert len(set(inside)) == 20, inside
    # Every address answers from the host, one machine each (distinct MACs in the neighbours).
    for ip in inside:
        assert basic.host.ping(ip, timeout=1), ip
    neigh = {n["dst"]: n.get("lladdr") for n in basic.host.ip_json("-4", "neigh")}
    assert len({neigh[ip] for ip in inside}) == 20
    d.cli("rm", "-f", *names)
    d.cli("network", "rm", "par")


# -- 3. per-network options -----------------------------------------------------------------------
def test_bridge_name_and_mtu_options(env: Env) -> None:
    basic, d = env
    d.cli("network", "create", "-o", "com.docker.network.bridge.name=brlamp0",
          "-o", "com.docker.network.driver.mtu=1400", "named")  # fmt: skip
    links = {x["ifname"]: x for x in basic.host.ip_json("link")}
    assert links["brlamp0"]["mtu"] == 1400
    d.cli("run", "-d", "--name", "mtu", "--network", "named", "host", "sleep", "1000")
    eth0 = inner_json(d, "mtu", "link", "show", "dev", "eth0")[0]
    assert eth0["mtu"] == 1400
    d.cli("rm", "-f", "mtu")
    d.cli("network", "rm", "named")
    # The bridge is down and without its address at once, and deleted right after the answer
    # (drivers/bridge.py): gone within a bounded wait.
    deadline = time.monotonic() + 5
    while "brlamp0" in {x["ifname"] for x in basic.host.ip_json("link")}:
        assert time.monotonic() < deadline, "brlamp0 is still there 5 s after network rm"
        time.sleep(0.05)
    # A network of the same bridge name and subnet right away: made after the old one went.
    d.cli("network", "create", "-o", "com.docker.network.bridge.name=brlamp0",
          "--subnet", "10.123.0.0/24", "named")  # fmt: skip
    d.cli("network", "rm", "named")
    d.cli("network", "create", "-o", "com.docker.network.bridge.name=brlamp0",
          "--subnet", "10.123.0.0/24", "named")  # fmt: skip
    d.cli("run", "-d", "--name", "again", "--network", "named", "busybox", "sleep", "1000")
    assert basic.host.ping("10.123.0.2")
    d.cli("rm", "-f", "again")
    d.cli("network", "rm", "named")


def test_icc_false_drops_container_to_container_only(env: Env) -> None:
    _basic, d = env
    d.cli("network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "noicc")
    for name in ("q1", "q2"):
        d.cli("run", "-d", "--name", name, "--network", "noicc", "busybox", "sleep", "1000")
    gw = net_inspect(d, "noicc")["IPAM"]["Config"][0]["Gateway"]
    assert not pings(d, "q1", ip_of(d, "q2"))
    assert not pings(d, "q2", ip_of(d, "q1"))
    for name in ("q1", "q2"):
        assert pings(d, name, gw) and pings(d, name, "203.0.113.1")
    d.cli("rm", "-f", "q1", "q2")
    d.cli("network", "rm", "noicc")


def test_masquerade_off_shows_the_container_address_or_nothing(env: Env) -> None:
    basic, d = env
    d.cli("network", "create", "--subnet", "10.52.0.0/24",
          "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "nomasq")  # fmt: skip
    d.cli("run", "-d", "--name", "nm", "--network", "nomasq", "busybox", "sleep", "1000")
    # No SNAT and the outside has no route back: the request leaves, no answer comes.
    assert not pings(d, "nm", "203.0.113.1")
    assert pings(d, "nm", "10.52.0.1")
    basic.outside.ip("route", "add", "10.52.0.0/24", "via", "203.0.113.2")
    try:  # with a route back, the server sees the container's own address
        out = d.cli("exec", "nm", "wget", "-qO-", "http://203.0.113.1/").stdout
        assert json.loads(out)["client"] == "10.52.0.2"
    finally:
        basic.outside.ip("route", "del", "10.52.0.0/24")
    d.cli("rm", "-f", "nm")
    d.cli("network", "rm", "nomasq")


def test_internal_network_reaches_nothing_outside(env: Env) -> None:
    basic, d = env
    d.cli("network", "create", "--internal", "--subnet", "10.53.0.0/24", "inner")
    d.cli("run", "-d", "--name", "in1", "--network", "inner", "host", "sleep", "1000")
    d.cli("run", "-d", "--name", "in2", "--network", "inner", "busybox", "sleep", "1000")
    assert inner_json(d, "in1", "-4", "route", "show", "default") == []
    assert pings(d, "in2", "10.53.0.1") and pings(d, "in2", "10.53.0.2")
    assert not pings(d, "in2", "203.0.113.1")
    basic.outside.ip("route", "add", "10.53.0.0/24", "via", "203.0.113.2")
    try:  # even with a route to it from outside, nothing is forwarded in
        assert not basic.outside.ping("10.53.0.2", timeout=1)
    finally:
        basic.outside.ip("route", "del", "10.53.0.0/24")
    pub = d.cli("run", "--rm", "--network", "inner", "-p", "8081:80", "busybox", "true",
                check=False)  # fmt: skip
    assert pub.returncode == 125 and "internal network inner" in pub.stderr
    d.cli("rm", "-f", "in1", "in2")
    d.cli("network", "rm", "inner")


def test_host_binding_ipv4_is_the_default_publish_address(env: Env) -> None:
    basic, d = env
    d.cli("network", "create", "-o",
          "com.docker.network.bridge.host_binding_ipv4=203.0.113.2", "bound")  # fmt: skip
    from boxnet.lab import echo_server_argv

    server = echo_server_argv(80)
    d.cli("run", "-d", "--name", "web", "--network", "bound", "-p", "8088:80", "host", *server)
    assert d.cli("port", "web").stdout.strip() == "80/tcp -> 203.0.113.2:8088"
    curl = ["curl", "-s", "--retry", "20", "--retry-connrefused", "--retry-delay", "0"]
    out = basic.outside.run([*curl, "-m", "3", "http://203.0.113.2:8088/"]).stdout
    assert json.loads(out)["client"] == "203.0.113.1"  # DNAT keeps the client's address
    d.cli("rm", "-f", "web")
    d.cli("network", "rm", "bound")


# -- 5. connect / disconnect ----------------------------------------------------------------------
def test_connect_and_disconnect_a_running_container(env: Env) -> None:
    _basic, d = env
    d.cli("run", "-d", "--name", "c1", "--network", "lamp", "host", "sleep", "1000")
    assert not pings(d, "c1", "172.19.0.2")  # tomcat2 on lnmp
    d.cli("network", "connect", "lnmp", "c1")
    eth1 = inner_json(d, "c1", "-4", "addr", "show", "dev", "eth1")[0]["addr_info"][0]
    assert (eth1["local"], eth1["prefixlen"]) == ("172.19.0.3", 16)
    routes = inner_json(d, "c1", "-4", "route")
    assert any(r["dst"] == "172.19.0.0/16" and r["dev"] == "eth1" for r in routes)
    assert [r["dev"] for r in routes if r["dst"] == "default"] == ["eth0"]
    assert pings(d, "c1", "172.19.0.2") and pings(d, "tomcat2", "172.19.0.3")
    assert "c1" in {v["Name"] for v in net_inspect(d, "lnmp")["Containers"].values()}
    dup = d.cli("network", "connect", "lnmp", "c1", check=False)
    assert dup.returncode == 1 and "already exists in network lnmp" in dup.stderr
    d.cli("network", "disconnect", "lnmp", "c1")
    names = {x["ifname"] for x in inner_json(d, "c1", "link")}
    assert names == {"lo", "eth0"}
    assert not pings(d, "c1", "172.19.0.2")
    # -f on a connection that is there works like the plain verb; the address is free again.
    d.cli("network", "connect", "--ip", "172.19.0.50", "lnmp", "c1")
    assert pings(d, "tomcat2", "172.19.0.50")
    d.cli("network", "disconnect", "-f", "lnmp", "c1")
    assert not pings(d, "tomcat2", "172.19.0.50")
    bad = d.cli("network", "connect", "--ip", "172.17.0.99", "bridge", "c1", check=False)
    assert bad.returncode == 1 and "user configured subnets" in bad.stderr
    # The network it was created with can go too (Docker allows it), also across a restart.
    assert pings(d, "c1", "172.18.0.1")
    d.cli("network", "disconnect", "lamp", "c1")
    assert {x["ifname"] for x in inner_json(d, "c1", "link")} == {"lo"}
    assert "c1" not in {v["Name"] for v in net_inspect(d, "lamp")["Containers"].values()}
    d.cli("restart", "-t", "0", "c1")
    assert {x["ifname"] for x in inner_json(d, "c1", "link")} == {"lo"}
    again = d.cli("network", "disconnect", "lamp", "c1", check=False)
    assert again.returncode == 1 and "is not connected to network lamp" in again.stderr
    d.cli("network", "connect", "lamp", "c1")
    assert pings(d, "c1", "172.18.0.1")
    d.cli("rm", "-f", "c1")


def test_connect_through_dockers_api_shapes_and_for_a_stopped_container(env: Env) -> None:
    _basic, d = env
    d.cli("create", "--name", "later", "--network", "lamp", "host", "sleep", "1000")
    status, body = api_post(
        d,
        "/v1.43/networks/lnmp/connect",
        {"Container": "later", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "172.19.0.77"},
                                                  "Aliases": ["db"]}},
    )  # fmt: skip
    assert status == 200, body
    d.cli("start", "later")
    eth1 = inner_json(d, "later", "-4", "addr", "show", "dev", "eth1")[0]["addr_info"][0]
    assert eth1["local"] == "172.19.0.77"
    assert pings(d, "tomcat2", "172.19.0.77")
    status, body = api_post(d, "/networks/lnmp/disconnect", {"Container": "later"})
    assert status == 200, body
    assert {x["ifname"] for x in inner_json(d, "later", "link")} == {"lo", "eth0"}
    status, body = api_post(d, "/networks/lnmp/disconnect", {"Container": "later"})
    assert status == 409 and b"is not connected to network lnmp" in body
    status, body = api_post(d, "/networks/host/connect", {"Container": "later"})
    assert status == 403
    d.cli("rm", "-f", "later")
