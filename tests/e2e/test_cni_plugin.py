"""Issue 18: boxnet-cni driven directly, as a runtime does: CNI_* variables and a configuration on
stdin, one test per verb and per error code. Observers: `ip -j` inside the namespaces, ping, HTTP
from the lab's outside host, and the spec's JSON shapes (not boxnetd's records alone).

One lab (host + outside) with one boxnetd in "host"; the "container" namespaces are the lab's.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path
from typing import Any, NamedTuple

import cni_helpers
import pytest
from cni_helpers import NETWORK, SUBNET, cni, config

from boxnet.lab import BasicLab, Daemon, Lab, Netns, basic_lab
from boxnet.lab.proc import tool

pytestmark = pytest.mark.e2e


class Env(NamedTuple):
    lab: Lab
    basic: BasicLab
    daemon: Daemon


@pytest.fixture(scope="module", params=["c", "python"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """Every test runs on both implementations (one lab each): the C plugin and the Python
    one, which must answer alike."""
    cni_helpers.use(request.param)
    lab = Lab(f"cni-plugin-{request.param}")
    try:
        basic = basic_lab(lab)
        yield Env(lab, basic, lab.boxnetd(basic.host))
    finally:
        lab.close()


def add(e: Env, ns: Netns | str, cid: str, **kw: Any) -> dict[str, Any]:
    path = ns if isinstance(ns, str) else ns.path
    conf = kw.pop("conf", None) or config(e.daemon)
    rc, out = cni("ADD", conf, cid, path, **kw)
    assert rc == 0, out
    assert isinstance(out, dict)
    return out


def inside_eth0(ns: Netns, ifname: str = "eth0") -> dict[str, Any]:
    data = ns.ip_json("addr", "show", "dev", ifname)
    assert data, f"{ifname} missing in {ns.name}"
    return dict(data[0])


def network_containers(d: Daemon) -> dict[str, Any]:
    data = json.loads(d.cli("network", "inspect", "--format", "json", NETWORK).stdout)
    net = data[0] if isinstance(data, list) else data
    return dict(net["Containers"])


def address(result: dict[str, Any]) -> str:
    return str(ip_interface(result["ips"][0]["address"]).ip)


def test_version(env: Env) -> None:
    rc, out = cni("VERSION", {"cniVersion": "0.4.0"})
    assert rc == 0
    assert out["cniVersion"] == "0.4.0"
    assert {"0.4.0", "1.0.0", "1.1.0"} <= set(out["supportedVersions"])


def test_add_result_matches_the_kernel(env: Env) -> None:
    a = env.lab.netns("cni-a")
    out = add(env, a, "ctr-a", args="IgnoreUnknown=1;K8S_POD_NAME=cnia")
    assert out["cniVersion"] == "1.1.0"
    host, inside = out["interfaces"]
    assert inside["name"] == "eth0" and inside["sandbox"] == a.path
    assert "sandbox" not in host and host["name"].startswith("veth")
    (ip,) = out["ips"]
    assert set(ip) == {"address", "gateway", "interface"}  # 1.x: no "version"
    assert ip["interface"] == 1 and ip["gateway"] == "10.99.7.1"
    assert ip_interface(ip["address"]).network == ip_interface(SUBNET).network
    assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.99.7.1"}]
    assert out["dns"] == {"nameservers": ["127.0.0.11"]}
    # The kernel agrees: the address and MAC inside, the default route, the host end on a bridge.
    eth0 = inside_eth0(a)
    assert eth0["address"] == inside["mac"]
    assert ip["address"] in [
        f"{x['local']}/{x['prefixlen']}" for x in eth0["addr_info"] if x["family"] == "inet"
    ]
    routes = a.ip_json("route", "show", "default")
    assert routes[0]["gateway"] == "10.99.7.1" and routes[0]["dev"] == "eth0"
    (veth,) = env.basic.host.ip_json("link", "show", "dev", host["name"])
    assert veth["address"] == host["mac"] and veth["master"].startswith("br-")
    # ... and boxnet lists it on the network it created from the configuration's subnet.
    listed = {v["Name"]: v for v in network_containers(env.daemon).values()}
    assert listed["cnia"]["IPv4Address"] == ip["address"]


def test_old_versions_get_their_shape(env: Env) -> None:
    ns = env.lab.netns("cni-old")
    out = add(env, ns, "ctr-old", conf=config(env.daemon, "0.4.0"))
    assert out["cniVersion"] == "0.4.0"
    assert out["ips"][0]["version"] == "4"
    rc, _ = cni("DEL", config(env.daemon, "0.4.0"), "ctr-old", ns.path)
    assert rc == 0


def test_existing_dual_stack_network_without_ipam(env: Env) -> None:
    """A network boxnet already has is used as it is (no ipam in the configuration): both
    families, each address pointing at the sandbox's interface, a default route per family."""
    d = env.daemon
    d.cli("network", "create", "--ipv6", "--subnet", "10.99.3.0/24",
          "--subnet", "fd00:99:3::/64", "dual")  # fmt: skip
    ns = env.lab.netns("cni-dual")
    conf = config(d, network="dual", ipam={})
    out = add(env, ns, "ctr-dual", conf=conf)
    families = {ip_interface(ip["address"]).version: ip for ip in out["ips"]}
    assert set(families) == {4, 6} and all(ip["interface"] == 1 for ip in out["ips"])
    assert {r["dst"] for r in out["routes"]} == {"0.0.0.0/0", "::/0"}
    inside = {f"{a['local']}/{a['prefixlen']}" for a in inside_eth0(ns)["addr_info"]}
    assert {families[4]["address"], families[6]["address"]} <= inside
    route6 = ns.ip_json("-6", "route", "show", "default")
    assert route6 and route6[0]["gateway"] == families[6]["gateway"]
    assert ns.run(["ping", "-6", "-c1", "-W2", families[6]["gateway"]], check=False).returncode == 0
    assert cni("DEL", conf, "ctr-dual", ns.path) == (0, None)
    d.cli("network", "rm", "dual")  # nothing left on it


def test_two_namespaces_and_a_container_reach_each_other(env: Env) -> None:
    a = env.lab["cni-a"]
    b = env.lab.netns("cni-b")
    aliased = config(env.daemon, runtimeConfig={"aliases": {NETWORK: ["bee"]}})
    ip_b = address(add(env, b, "ctr-b", args="K8S_POD_NAME=cnib", conf=aliased))
    ip_a = str(ip_interface(inside_eth0(a)["addr_info"][0]["local"]).ip)
    assert a.ping(ip_b) and b.ping(ip_a)
    d = env.daemon
    d.cli("run", "-d", "--name", "peer", "--network", NETWORK, "busybox", "sleep", "600")
    try:
        ping = d.cli("exec", "peer", "ping", "-c1", "-W2", ip_a, check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # Names: the runtime's K8S_POD_NAME, from a boxnet container and from a CNI namespace.
        by_name = d.cli("exec", "peer", "ping", "-c1", "-W2", "cnib", check=False)
        assert by_name.returncode == 0 and ip_b in by_name.stdout, by_name.stdout + by_name.stderr
        alias = d.cli("exec", "peer", "nslookup", "bee", check=False)  # the aliases capability
        assert alias.returncode == 0 and ip_b in alias.stdout, alias.stdout + alias.stderr
        peer_ip = json.loads(d.cli("inspect", "--format", "json", "peer").stdout)
        peer_ip = (peer_ip[0] if isinstance(peer_ip, list) else peer_ip)["NetworkSettings"]
        looked = a.run([tool("busybox"), "nslookup", "peer", "127.0.0.11"], check=False)
        assert looked.returncode == 0, looked.stdout + looked.stderr
        assert peer_ip["Networks"][NETWORK]["IPAddress"] in looked.stdout
    finally:
        d.cli("rm", "-f", "peer", check=False)


def test_published_port_reached_from_outside(env: Env) -> None:
    web = env.lab.netns("cni-web")
    mapping = {"hostPort": 8088, "containerPort": 80, "protocol": "tcp"}
    conf = config(env.daemon, runtimeConfig={"portMappings": [mapping]})
    ip = address(add(env, web, "ctr-web", conf=conf))
    env.lab.http_server(web, 80)
    got = env.basic.outside.run(
        ["curl", "-s", "--max-time", "5", "http://203.0.113.2:8088/"], check=False
    )
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert (answer["local"], answer["local_port"]) == (ip, 80)  # DNATed to the CNI namespace
    assert answer["client"] == "203.0.113.1"  # the outside host itself: no proxy in between
    rc, _ = cni("DEL", conf, "ctr-web", web.path)
    assert rc == 0
    gone = env.basic.outside.run(
        ["curl", "-s", "--max-time", "2", "http://203.0.113.2:8088/"], check=False
    )
    assert gone.returncode != 0


def test_check_passes_then_fails_when_the_interface_goes(env: Env) -> None:
    ns = env.lab.netns("cni-chk")
    out = add(env, ns, "ctr-chk")
    conf = config(env.daemon, prevResult=out)
    assert cni("CHECK", conf, "ctr-chk", ns.path) == (0, None)
    wrong = config(env.daemon, prevResult={**out, "ips": [{"address": "10.99.7.250/24"}]})
    rc, err = cni("CHECK", wrong, "ctr-chk", ns.path)
    assert rc == 1 and err["code"] == 100 and "10.99.7.250" in err["details"]
    ns.ip("link", "del", "eth0")
    rc, err = cni("CHECK", conf, "ctr-chk", ns.path)
    assert rc == 1 and err["code"] == 100 and "eth0 is missing" in err["details"]
    rc, err = cni("CHECK", conf, "never-added", ns.path)
    assert rc == 1 and err["code"] == 3
    assert cni("DEL", conf, "ctr-chk", ns.path)[0] == 0


def test_del_is_idempotent_and_releases_everything(env: Env) -> None:
    ns = env.lab.netns("cni-del")
    out = add(env, ns, "ctr-del")
    veth = out["interfaces"][0]["name"]
    assert cni("DEL", config(env.daemon), "ctr-del", ns.path) == (0, None)
    assert not _has(ns, "eth0")
    assert not _has(env.basic.host, veth)
    assert out["ips"][0]["address"] not in json.dumps(network_containers(env.daemon))
    assert cni("DEL", config(env.daemon), "ctr-del", ns.path) == (0, None)  # a second DEL
    assert cni("DEL", config(env.daemon), "ctr-del", "") == (0, None)  # no CNI_NETNS at all
    # The address is free again: the next ADD may take it.
    again = add(env, ns, "ctr-del2")
    assert again["ips"][0]["address"] == out["ips"][0]["address"]
    assert cni("DEL", config(env.daemon), "ctr-del2", ns.path)[0] == 0


def _has(ns: Netns, ifname: str) -> bool:
    return ns.ip("link", "show", "dev", ifname, check=False).returncode == 0


def _own_netns(e: Env, role: str) -> str:
    """A namespace the test deletes itself (the lab's must still exist at its close)."""
    name = f"{e.lab.prefix}-{role}"
    subprocess.run([tool("ip"), "netns", "add", name], check=True)
    return f"/run/netns/{name}"


def _del_netns(path: str) -> None:
    subprocess.run([tool("ip"), "netns", "del", Path(path).name], check=False)


def test_del_after_the_namespace_is_gone(env: Env) -> None:
    path = _own_netns(env, "gone")
    try:
        out = add(env, path, "ctr-gone")
    finally:
        _del_netns(path)
    assert cni("DEL", config(env.daemon), "ctr-gone", path) == (0, None)
    assert not _has(env.basic.host, out["interfaces"][0]["name"])
    assert out["ips"][0]["address"] not in json.dumps(network_containers(env.daemon))


def test_gc_removes_what_the_runtime_no_longer_lists(env: Env) -> None:
    keep, drop = env.lab.netns("cni-keep"), env.lab.netns("cni-drop")
    add(env, keep, "ctr-keep")
    add(env, drop, "ctr-drop")
    valid = [{"containerID": "ctr-keep", "ifname": "eth0"}]
    # Everything attached before in this module, except what the runtime still lists, goes.
    for ns, cid in (("cni-a", "ctr-a"), ("cni-b", "ctr-b")):
        valid.append({"containerID": cid, "ifname": "eth0"})
        assert _has(env.lab[ns], "eth0")
    conf = config(env.daemon, **{"cni.dev/valid-attachments": valid})
    assert cni("GC", conf) == (0, None)
    assert _has(keep, "eth0") and not _has(drop, "eth0")
    assert _has(env.lab["cni-a"], "eth0")
    # boxnet's own gc keeps attachments whose namespace lives (they own their records).
    env.daemon.cli("system", "gc")
    assert _has(keep, "eth0") and _has(env.lab["cni-a"], "eth0")
    assert keep.ping("10.99.7.1")


def test_static_address_from_cni_args(env: Env) -> None:
    one, two = env.lab.netns("cni-ip1"), env.lab.netns("cni-ip2")
    out = add(env, one, "ctr-ip1", args="IgnoreUnknown=1;IP=10.99.7.77")
    assert out["ips"][0]["address"] == "10.99.7.77/24"
    assert "10.99.7.77" in {a["local"] for a in inside_eth0(one)["addr_info"]}
    rc, err = cni("ADD", config(env.daemon), "ctr-ip2", two.path, args="IP=10.99.7.77")
    assert rc == 1 and err["code"] == 100 and "10.99.7.77" in err["msg"]
    assert not _has(two, "eth0")  # nothing half-made
    assert cni("DEL", config(env.daemon), "ctr-ip1", one.path) == (0, None)


def test_status(env: Env) -> None:
    assert cni("STATUS", config(env.daemon)) == (0, None)
    rc, err = cni("STATUS", config(env.daemon, boxnetHost="unix:///nonexistent/boxnet.sock"))
    assert rc == 1 and err["code"] == 50


def test_daemon_restart_keeps_live_attachments_and_drops_gone_ones(env: Env) -> None:
    d = env.daemon
    path = _own_netns(env, "restart")
    try:
        out = add(env, path, "ctr-restart")
        d.kill()
        d.wait(10)
    finally:
        _del_netns(path)  # gone while the daemon was down
    d.start()
    veth = out["interfaces"][0]["name"]
    deadline = time.monotonic() + 5
    while _has(env.basic.host, veth) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _has(env.basic.host, veth)
    listed = network_containers(d)
    assert out["ips"][0]["address"] not in json.dumps(listed)
    # The live one (cni-a) is kept, and still answers by name after the restart.
    assert "cnia" in {v["Name"] for v in listed.values()}
    looked = env.lab["cni-b"].run([tool("busybox"), "nslookup", "cnia", "127.0.0.11"], check=False)
    assert looked.returncode == 0, looked.stdout + looked.stderr
    assert cni("DEL", config(d), "ctr-restart", path) == (0, None)


# -- one test per error code ---------------------------------------------------------------------
def test_error_1_incompatible_version(env: Env) -> None:
    rc, err = cni("ADD", config(env.daemon, "9.9.9"), "x1", env.lab["cni-a"].path)
    assert rc == 1 and err["code"] == 1 and "9.9.9" in err["msg"]
    rc, err = cni("GC", config(env.daemon, "1.0.0"))
    assert rc == 1 and err["code"] == 1


def test_error_3_namespace_does_not_exist(env: Env) -> None:
    rc, err = cni("ADD", config(env.daemon), "x3", "/run/netns/boxnet-cni-no-such-ns")
    assert rc == 1 and err["code"] == 3 and "does not exist" in err["msg"]


def test_error_4_invalid_environment(env: Env) -> None:
    rc, err = cni("ADD", config(env.daemon), "", env.lab["cni-a"].path)
    assert rc == 1 and err["code"] == 4 and "CNI_CONTAINERID" in err["msg"]
    rc, err = cni("BOGUS", config(env.daemon), "x4", env.lab["cni-a"].path)
    assert rc == 1 and err["code"] == 4
    rc, err = cni("ADD", config(env.daemon), "x4", env.lab["cni-a"].path, ifname="a/b")
    assert rc == 1 and err["code"] == 4


def test_error_6_undecodable_configuration(env: Env) -> None:
    rc, err = cni("ADD", "{not json", "x6", env.lab["cni-a"].path)
    assert rc == 1 and err["code"] == 6 and set(err) >= {"cniVersion", "code", "msg"}
    # Its boxnetHost readable (the C plugin reads only that, so boxnetd decodes it): the same.
    broken = json.dumps(config(env.daemon))[:-1] + ', "x": [1,,2]}'
    rc, err = cni("ADD", broken, "x6", env.lab["cni-a"].path)
    assert rc == 1 and err["code"] == 6 and "decode" in err["msg"]


def test_error_7_invalid_configuration(env: Env) -> None:
    ns = env.lab["cni-a"].path
    conf = config(env.daemon)
    del conf["type"]
    assert cni("ADD", conf, "x7", ns)[1]["code"] == 7
    rc, err = cni("ADD", config(env.daemon, ipam={"type": "dhcp"}), "x7", ns)
    assert rc == 1 and err["code"] == 7
    missing = config(env.daemon, network="no-such-network", ipam={})
    rc, err = cni("ADD", missing, "x7", ns)
    assert rc == 1 and err["code"] == 7 and "no-such-network" in err["msg"]
    other = config(env.daemon, ipam={"subnet": "10.99.8.0/24"})
    rc, err = cni("ADD", other, "x7", ns)
    assert rc == 1 and err["code"] == 7 and SUBNET in err["msg"]


def test_error_11_daemon_down(env: Env) -> None:
    conf = config(env.daemon, boxnetHost="unix:///nonexistent/boxnet.sock")
    rc, err = cni("ADD", conf, "x11", env.lab["cni-a"].path)
    assert rc == 1 and err["code"] == 11 and "boxnetd" in err["msg"]


def test_what_the_c_plugin_leaves_to_the_python_one(env: Env) -> None:
    """The C plugin execs the Python one (same stdin) for what it does not read itself: a
    boxnetHost with \\u escapes, a configuration larger than its 4 MiB buffer. Both still
    reach the daemon and give its answers."""
    if cni_helpers._using[0] != cni_helpers.PLUGINS["c"]:
        pytest.skip("the C plugin's own hand-over")
    ns = env.lab.netns("cni-fallback")
    escaped = json.dumps(config(env.daemon)).replace('"unix:///', '"unix:\\u002f//')
    assert "\\u002f" in escaped
    out = add(env, ns, "ctr-fb", conf=escaped)
    assert out["ips"][0]["address"] in {
        f"{x['local']}/{x['prefixlen']}" for x in inside_eth0(ns)["addr_info"]
    }
    large = json.dumps(config(env.daemon, padding="x" * (5 << 20)))
    assert cni("DEL", large, "ctr-fb", ns.path) == (0, None)
    assert not _has(ns, "eth0")
