"""Issue 15 end to end: IPv6 dual-stack user networks, on both firewall backends.

One lab (host + outside + client2) and one boxnetd per backend; the tests build on each other in
file order. Observers: `ip -j` in the lab's host namespace and inside containers (the `host`
image has iproute2), /proc/sys inside containers, real ping -6 and HTTP over IPv6 between them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6

pytestmark = pytest.mark.e2e

Env = tuple[BasicLab, Daemon]
SUBNET6 = "2001:db8:1::/64"


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    backend = ["--firewall-backend", request.param]
    lab = Lab(f"ipv6-{request.param[:3]}")
    try:
        basic = basic_lab(lab)
        yield basic, lab.boxnetd(basic.host, *backend)
    finally:
        lab.close()


def inspect(d: Daemon, *args: str) -> dict[str, Any]:
    data = json.loads(d.cli(*args, "--format", "json").stdout)
    return data[0] if isinstance(data, list) else data


def ip6_in(d: Daemon, name: str, *args: str) -> Any:
    """`ip -j -6 ARGS` inside a container of the `host` image."""
    return json.loads(d.cli("exec", name, "ip", "-j", "-6", *args).stdout or "[]")


def ping6(d: Daemon, name: str, dest: str, tries: int = 1) -> bool:
    """A ping -6 from inside a container answered, in at most `tries` attempts (a routed first
    packet may wait for neighbour discovery on both bridges)."""
    return any(
        d.cli("exec", name, "ping", "-6", "-c1", "-W1", dest, check=False).returncode == 0
        for _ in range(tries)
    )


def fetch(d: Daemon, name: str, url: str, wait: float = 5) -> str:
    """The page at url from inside a container; retried (a just-started httpd may not listen)."""
    deadline = time.monotonic() + wait
    while True:
        done = d.cli("exec", name, "wget", "-q", "-T", "2", "-O", "-", url, check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            return done.stdout
        time.sleep(0.1)


def test_dual_stack_network(env: Env) -> None:
    """--ipv6 with an IPv4 and an IPv6 subnet: the bridge carries both gateways, inspect shows
    one IPAM config per family."""
    basic, d = env
    d.cli("network", "create", "--ipv6", "--subnet", "10.98.0.0/24", "--subnet", SUBNET6,
          "--ip-range", "2001:db8:1::100/120", "v6net")  # fmt: skip
    net = inspect(d, "network", "inspect", "v6net")
    assert net["EnableIPv6"] is True
    configs = {c["Subnet"]: c for c in net["IPAM"]["Config"]}
    assert set(configs) == {"10.98.0.0/24", SUBNET6}
    assert configs[SUBNET6]["Gateway"] == "2001:db8:1::1"
    assert configs[SUBNET6]["IPRange"] == "2001:db8:1::100/120"
    bridge = f"br-{net['Id'][:12]}"
    [link] = basic.host.ip_json("-6", "addr", "show", "dev", bridge)
    assert any(a["local"] == "2001:db8:1::1" and a["prefixlen"] == 64 for a in link["addr_info"]), (
        link
    )


def test_containers_get_ipv6_and_talk(env: Env) -> None:
    """Each container gets its IPv6 address (from --ip-range, or --ip6) and a default route via
    the gateway; ping -6 and HTTP over IPv6 go between them."""
    _basic, d = env
    d.cli("run", "-d", "--name", "a6", "--network", "v6net", "host", "sleep", "1000")
    d.cli("run", "-d", "--name", "b6", "--network", "v6net", "--ip6", "2001:db8:1::42",
          "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
    settings = inspect(d, "inspect", "a6")["NetworkSettings"]
    ep = settings["Networks"]["v6net"]
    assert ep["GlobalIPv6Address"] == "2001:db8:1::100"  # the first of the --ip-range
    assert ep["GlobalIPv6PrefixLen"] == 64 and ep["IPv6Gateway"] == "2001:db8:1::1"
    assert ep["IPAddress"].startswith("10.98.0.")
    assert settings["GlobalIPv6Address"] == "2001:db8:1::100"
    [eth0] = ip6_in(d, "a6", "addr", "show", "dev", "eth0")
    addrs = {(a["local"], a["prefixlen"]) for a in eth0["addr_info"]}
    assert ("2001:db8:1::100", 64) in addrs
    assert any(IPv6Address(a).is_link_local for a, _ in addrs), addrs
    routes = ip6_in(d, "a6", "route", "show", "default")
    assert [r["gateway"] for r in routes] == ["2001:db8:1::1"], routes
    b6 = inspect(d, "inspect", "b6")["NetworkSettings"]["Networks"]["v6net"]
    assert b6["GlobalIPv6Address"] == "2001:db8:1::42"
    members = inspect(d, "network", "inspect", "v6net")["Containers"]
    assert {m["IPv6Address"] for m in members.values()} == {
        "2001:db8:1::100/64",
        "2001:db8:1::42/64",
    }
    assert ping6(d, "a6", "2001:db8:1::42")
    assert ping6(d, "a6", "2001:db8:1::1")  # the gateway on the bridge
    # TCP over IPv6: busybox httpd serves /etc; its hostname file names the container.
    page = fetch(d, "a6", "http://[2001:db8:1::42]/hostname")
    assert page.strip() == inspect(d, "inspect", "b6")["Config"]["Hostname"]


def test_static_ipv6_address_is_checked(env: Env) -> None:
    _basic, d = env
    outside = d.cli("run", "--rm", "--network", "v6net", "--ip6", "2001:db8:9::5", "busybox",
                    "true", check=False)  # fmt: skip
    assert outside.returncode != 0 and "not in the network's subnet" in outside.stderr
    taken = d.cli("run", "--rm", "--network", "v6net", "--ip6", "2001:db8:1::42", "busybox",
                  "true", check=False)  # fmt: skip
    assert taken.returncode != 0 and "already in use" in taken.stderr
    bad = d.cli("run", "--rm", "--ip6", "not-an-ip", "busybox", "true", check=False)
    assert bad.returncode != 0 and "invalid IPv6 address" in bad.stderr
    v4only = d.cli("network", "create", "--subnet", "10.97.0.0/24", "v4only")
    assert v4only.returncode == 0
    refused = d.cli("run", "--rm", "--network", "v4only", "--ip6", "2001:db8:1::7", "busybox",
                    "true", check=False)  # fmt: skip
    assert refused.returncode != 0 and "has no IPv6" in refused.stderr
    assert "Traceback" not in refused.stderr + bad.stderr + taken.stderr


def test_ipv4_only_networks_give_containers_no_ipv6(env: Env) -> None:
    """On a network without IPv6 the container's interface has no IPv6 at all: no address, not
    even link-local (so no router solicitation leaves it)."""
    _basic, d = env
    d.cli("run", "-d", "--name", "plain4", "--network", "v4only", "host", "sleep", "1000")
    assert ip6_in(d, "plain4", "addr", "show", "dev", "eth0") == []
    flag = d.cli("exec", "plain4", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6").stdout
    assert flag.strip() == "1"
    # A dual-stack container's interface has it on.
    flag = d.cli("exec", "a6", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6").stdout
    assert flag.strip() == "0"
    # Its namespace's default is off again after eth0 was born with IPv6 on: an IPv4-only
    # interface added later has none.
    d.cli("run", "-d", "--name", "mixed", "--network", "v6net", "host", "sleep", "1000")
    d.cli("network", "connect", "v4only", "mixed")
    flags = d.cli("exec", "mixed", "sh", "-c", "cat /proc/sys/net/ipv6/conf/eth[01]/disable_ipv6")
    assert flags.stdout.split() == ["0", "1"]
    assert ip6_in(d, "mixed", "addr", "show", "dev", "eth1") == []
    d.cli("rm", "-f", "mixed")


def test_ipv6_without_subnet_gets_a_unique_local_64(env: Env) -> None:
    """--ipv6 alone: an IPv4 subnet from the pools and a /64 of a unique local /48 (fd00::/8),
    the same /48 for every network of this daemon, a different /64 each."""
    _basic, d = env
    d.cli("network", "create", "--ipv6", "ula1")
    d.cli("network", "create", "--ipv6", "ula2")
    subnets = []
    for name in ("ula1", "ula2"):
        cfgs = inspect(d, "network", "inspect", name)["IPAM"]["Config"]
        [v6] = [IPv6Network(c["Subnet"]) for c in cfgs if ":" in c["Subnet"]]
        assert v6.prefixlen == 64 and v6.subnet_of(IPv6Network("fd00::/8"))
        assert any("." in c["Subnet"] for c in cfgs)
        subnets.append(v6)
    assert subnets[0] != subnets[1]
    assert subnets[0].supernet(new_prefix=48) == subnets[1].supernet(new_prefix=48)
    d.cli("run", "-d", "--name", "u1", "--network", "ula1", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "u1b", "--network", "ula1", "busybox", "sleep", "1000")
    peer = inspect(d, "inspect", "u1b")["NetworkSettings"]["Networks"]["ula1"]
    assert ping6(d, "u1", peer["GlobalIPv6Address"])


def test_ipv6_networks_are_isolated(env: Env) -> None:
    """Two IPv6 networks cannot reach each other over IPv6 (as over IPv4), while the host
    reaches both (the control: u1 answers routed packets, u2 reaches the host's bridges)."""
    basic, d = env
    d.cli("run", "-d", "--name", "u2", "--network", "ula2", "busybox", "sleep", "1000")
    u1 = inspect(d, "inspect", "u1")["NetworkSettings"]["Networks"]["ula1"]
    host_ping = ["ping", "-6", "-c1", "-W1", u1["GlobalIPv6Address"]]
    assert any(basic.host.run(host_ping, check=False).returncode == 0 for _ in range(3))
    assert ping6(d, "u2", u1["IPv6Gateway"], tries=3)
    assert not ping6(d, "u2", u1["GlobalIPv6Address"], tries=3)
    assert not ping6(d, "a6", u1["GlobalIPv6Address"], tries=3)


def test_outbound_ipv6_is_masqueraded(env: Env) -> None:
    """NAT66: a container on a documentation-prefix network and one on a unique local one reach
    the lab's outside over IPv6, seen there with the host's own IPv6 address."""
    basic, d = env
    assert OUTSIDE_IPV6 in {
        a["local"] for link in basic.outside.ip_json("-6", "addr") for a in link["addr_info"]
    }
    # (the `host` image's wget: busybox wget crashes on a bracketed IPv6 URL)
    d.cli("run", "-d", "--name", "uh", "--network", "ula1", "host", "sleep", "1000")
    for name in ("a6", "uh"):
        out = fetch(d, name, f"http://[{OUTSIDE_IPV6}]/")
        assert json.loads(out)["client"] == HOST_IPV6, (name, out)


def test_internal_ipv6_network_stays_internal(env: Env) -> None:
    """An internal dual-stack network: its containers talk to each other over IPv6 but have no
    IPv6 default route and reach nothing outside, even with a route put in by hand."""
    basic, d = env
    d.cli("network", "create", "--internal", "--ipv6", "--subnet", "2001:db8:3::/64", "in6")
    d.cli("run", "-d", "--name", "i1", "--network", "in6", "host", "sleep", "1000")
    d.cli("run", "-d", "--name", "i2", "--network", "in6", "busybox", "sleep", "1000")
    assert ip6_in(d, "i1", "route", "show", "default") == []
    i2 = inspect(d, "inspect", "i2")["NetworkSettings"]["Networks"]["in6"]["GlobalIPv6Address"]
    assert ping6(d, "i1", i2, tries=3)
    # The firewall, not a missing route, keeps it in: with routes both ways (the container's
    # by hand, the outside's back to the subnet via the host) nothing still gets through.
    d.cli("exec", "i1", "ip", "-6", "route", "add", "default", "via", "2001:db8:3::1")
    basic.outside.ip("-6", "route", "add", "2001:db8:3::/64", "via", HOST_IPV6)
    try:
        assert not ping6(d, "i1", OUTSIDE_IPV6, tries=3)
    finally:
        basic.outside.ip("-6", "route", "del", "2001:db8:3::/64", "via", HOST_IPV6)
    assert not ping6(d, "i1", inspect(d, "inspect", "u1")["NetworkSettings"]["GlobalIPv6Address"])


def test_icc_false_holds_over_ipv6(env: Env) -> None:
    """enable_icc=false on a dual-stack network: its containers cannot reach each other over
    IPv6 either, while each still reaches the gateway (the control)."""
    _basic, d = env
    d.cli("network", "create", "--ipv6", "--subnet", "2001:db8:4::/64",
          "-o", "com.docker.network.bridge.enable_icc=false", "noicc6")  # fmt: skip
    d.cli("run", "-d", "--name", "n1", "--network", "noicc6", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "n2", "--network", "noicc6", "busybox", "sleep", "1000")
    n2 = inspect(d, "inspect", "n2")["NetworkSettings"]["Networks"]["noicc6"]
    assert ping6(d, "n1", n2["IPv6Gateway"], tries=3)
    assert not ping6(d, "n1", n2["GlobalIPv6Address"], tries=3)


def test_names_resolve_to_ipv6_on_dual_stack_networks(env: Env) -> None:
    """The embedded resolver answers AAAA for a container's name and alias on an IPv6 network
    (and A as before); a name on an IPv4-only network has no AAAA. /etc/hosts lists the
    container's own IPv6 address too."""
    _basic, d = env
    d.cli("network", "connect", "--alias", "web6", "v6net", "plain4")
    b6 = inspect(d, "inspect", "b6")["NetworkSettings"]["Networks"]["v6net"]
    for name in ("b6", "web6"):
        target = "b6" if name == "b6" else "plain4"
        ep = inspect(d, "inspect", target)["NetworkSettings"]["Networks"]["v6net"]
        out = d.cli("exec", "b6", "nslookup", "-type=aaaa", name).stdout
        assert ep["GlobalIPv6Address"] in out, (name, out)
        out = d.cli("exec", "b6", "nslookup", "-type=a", name).stdout
        assert ep["IPAddress"] in out and ep["GlobalIPv6Address"] not in out, (name, out)
    # ping by name over IPv6 from a dual-stack peer
    assert d.cli("exec", "b6", "ping", "-6", "-c1", "-W2", "web6").returncode == 0
    # On an IPv4-only network: A answered, AAAA empty (NOERROR, not forwarded).
    d.cli("run", "-d", "--name", "q4", "--network", "v4only", "busybox", "sleep", "1000")
    v4 = inspect(d, "inspect", "q4")["NetworkSettings"]["Networks"]["v4only"]["IPAddress"]
    assert v4 in d.cli("exec", "q4", "nslookup", "-type=a", "q4").stdout
    out = d.cli("exec", "q4", "nslookup", "-type=aaaa", "q4", check=False)
    answers = [ln for ln in out.stdout.splitlines() if ln.startswith("Address") and "#" not in ln
               and "127.0.0.11" not in ln]  # fmt: skip
    assert out.returncode == 0 and answers == [], out
    assert "NXDOMAIN" not in out.stdout + out.stderr, out
    hosts = d.cli("exec", "b6", "cat", "/etc/hosts").stdout
    assert any(
        line.split()[0] == b6["GlobalIPv6Address"] for line in hosts.splitlines() if line.strip()
    ), hosts
    assert any(line.split()[0] == b6["IPAddress"] for line in hosts.splitlines() if line.strip()), (
        hosts
    )


def test_ipv6_refusals(env: Env) -> None:
    """What is not done yet is refused with the reason; nothing is left behind."""
    basic, d = env
    before = {x["ifname"] for x in basic.host.ip_json("link")}
    res = d.cli("network", "create", "--subnet", "2001:db8:5::/64", "nov6", check=False)
    assert res.returncode == 1 and "IPv6 is not enabled" in res.stderr
    assert "--ipv6" in res.stderr
    res = d.cli("network", "create", "--ipv6", "--subnet", SUBNET6, "dup6", check=False)
    assert res.returncode == 1 and "overlaps" in res.stderr
    res = d.cli("network", "create", "--ipv6", "--subnet", "2001:db8:6::/64", "--gateway",
                "2001:db8:7::1", "badgw", check=False)  # fmt: skip
    assert res.returncode == 1 and "no matching subnet" in res.stderr
    assert "Traceback" not in res.stderr
    assert {x["ifname"] for x in basic.host.ip_json("link")} == before
    for name in ("nov6", "dup6", "badgw"):
        assert d.cli("network", "inspect", name, check=False).returncode == 1
