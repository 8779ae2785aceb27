"""Issue 15: the reachability matrix of issue 4 over IPv6, on both firewall backends.

Dual-stack networks only: three user networks (two containers on the first), an internal one
(two), one with enable_icc=false (two), one in IPv6 routed mode (its container publishes :80,
which routed mode opens to the outside, never to other networks), an IPv6-only one
(--ipv4=false), the default bridge with IPv6 and icc=false (two), `host` and `none`. Every
ordered pair is probed with ping -6 and with a TCP connection over IPv6 (each container runs
busybox httpd on :80, the host-mode one on the host's :80, the lab's outside its echo server),
and with ping over IPv4 for the icc=false rows; the tables must match exactly.
Then the outside reaches a published port over IPv6, and nothing else of the container even with
a route to its subnet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab import firewalls as fw
from boxnet.lab.matrix import Member, expected_reach, observe, render
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6

pytestmark = pytest.mark.e2e

HOST_IP, OUTSIDE_IP = "203.0.113.2", "203.0.113.1"
# The default bridge: dual stack, icc off (daemon flags, as `dockerd --ipv6 --icc=false`).
DAEMON_ARGS = ("--ipv6", "--fixed-cidr-v6", "2001:db8:d0::/64", "--icc=false")
NETWORKS = {  # name -> network create arguments
    "net1": ("--ipv6", "--subnet", "2001:db8:e1::/64"),
    "net2": ("--ipv6", "--subnet", "2001:db8:e2::/64"),
    "net3": ("--ipv6", "--subnet", "2001:db8:e3::/64"),
    "intnet": ("--ipv6", "--internal", "--subnet", "2001:db8:e4::/64"),
    "noicc": ("--ipv6", "--subnet", "2001:db8:e5::/64",
              "-o", "com.docker.network.bridge.enable_icc=false"),
    "routed": ("--ipv6", "--subnet", "2001:db8:e6::/64",
               "-o", "com.docker.network.bridge.gateway_mode_ipv6=routed"),
    "v6only": ("--ipv6", "--ipv4=false", "--subnet", "2001:db8:e7::/64"),
}  # fmt: skip
LAYOUT = [
    ("a1", "net1"), ("a2", "net1"), ("b1", "net2"), ("c1", "net3"), ("i1", "intnet"),
    ("i2", "intnet"), ("n1", "noicc"), ("n2", "noicc"), ("r1", "routed"), ("o1", "v6only"),
    ("d1", "bridge"), ("d2", "bridge"),
    ("h1", "host"), ("z1", "none"),
]  # fmt: skip
NO_ICC = ("noicc", "bridge")
HTTPD = ("busybox", "httpd", "-f", "-p", "80", "-h", "/etc")


class Env:
    def __init__(self, basic: BasicLab, d: Daemon) -> None:
        self.basic, self.d = basic, d
        self.v4: list[Member] = []
        self.v6: list[Member] = []


@pytest.fixture(scope="module", params=fw.BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"mx6-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param), *DAEMON_ARGS)
        # Routed mode is for a prefix the upstream routes to the host: the outside does so.
        basic.outside.ip("-6", "route", "add", "2001:db8:e6::/64", "via", HOST_IPV6)
        yield build(Env(basic, d))
    finally:
        lab.close()


def inspect(d: Daemon, *args: str) -> dict[str, Any]:
    data = json.loads(d.cli(*args, "--format", "json").stdout)
    return dict(data[0] if isinstance(data, list) else data)


def build(env: Env) -> Env:
    d = env.d
    for name, args in NETWORKS.items():
        d.cli("network", "create", *args, name)
    gateways: dict[tuple[str, int], str] = {}
    for name in ("intnet",):  # internal: no default route, but the bridge address is there
        for cfg in inspect(d, "network", "inspect", name)["IPAM"]["Config"]:
            gateways[(name, 6 if ":" in cfg["Subnet"] else 4)] = cfg["Gateway"]

    def start(item: tuple[str, str]) -> tuple[Member, Member]:
        name, net = item
        publish = ["-p", "8080:80"] if name == "a1" else ["-p", "8090:80"] if name == "r1" else []
        d.cli("run", "-d", "--name", name, "--network", net, *publish, *HTTPD)
        ep = inspect(d, "inspect", name)["NetworkSettings"]["Networks"].get(net, {})
        host = net == "host"
        ip4 = HOST_IP if host else ep.get("IPAddress") or None
        ip6 = HOST_IPV6 if host else ep.get("GlobalIPv6Address") or None
        gw4 = gateways.get((net, 4), ep.get("Gateway") or None)
        gw6 = gateways.get((net, 6), ep.get("IPv6Gateway") or None)
        kw = {"internal": net == "intnet", "icc": net not in NO_ICC}
        return Member(name, net, ip4, gw4, **kw), Member(name, net, ip6, gw6, **kw)

    with ThreadPoolExecutor(6) as pool:
        pairs = list(pool.map(start, LAYOUT))
    # (o1 has no IPv4 at all: no row or column in the IPv4 matrix)
    env.v4 = [p[0] for p in pairs if p[0].ip or p[0].network == "none"]
    env.v6 = [p[1] for p in pairs]
    # Every dual-stack container really has its IPv6 address (else the matrix proves little).
    assert all(m.ip and ":" in m.ip for m in env.v6 if m.network != "none"), env.v6
    return env


@pytest.mark.parametrize("how", ["ping6", "tcp"])
def test_reachability_matrix_over_ipv6(env: Env, how: str) -> None:
    expected = expected_reach(env.v6, HOST_IPV6, OUTSIDE_IPV6)
    observed = observe(env.d, env.v6, HOST_IPV6, OUTSIDE_IPV6, how)
    table = render(env.v6, expected, observed, HOST_IPV6, OUTSIDE_IPV6)
    print(f"\n{how}\n{table}")
    assert observed == expected, "\n" + table


def test_icc_false_matrix_over_ipv4_too(env: Env) -> None:
    """The same layout over IPv4: icc off on the default bridge and on `noicc` holds there too
    (the IPv4 rows make the IPv6 ones comparable)."""
    expected = expected_reach(env.v4, HOST_IP, OUTSIDE_IP)
    observed = observe(env.d, env.v4, HOST_IP, OUTSIDE_IP)
    table = render(env.v4, expected, observed, HOST_IP, OUTSIDE_IP)
    print("\n" + table)
    assert observed == expected, "\n" + table


def curl6(env: Env, url: str) -> str:
    res = env.basic.outside.run(["curl", "-s", "-g", "-m", "3", url], check=False)
    return str(res.stdout) if res.returncode == 0 else ""


def test_outside_reaches_published_port_over_ipv6_and_nothing_else(env: Env) -> None:
    """-p 8080:80 answers the outside on the host's IPv6 address with a1's page; with a route to
    net1's IPv6 subnet via the host, a1's port 80 and its ping stay closed (nat mode: only the
    published port, through the host's address), while net1's gateway answers (the control)."""
    basic, d = env.basic, env.d
    hostname = inspect(d, "inspect", "a1")["Config"]["Hostname"]
    assert curl6(env, f"http://[{HOST_IPV6}]:8080/hostname").strip() == hostname
    a1 = next(m for m in env.v6 if m.name == "a1")
    assert a1.ip and a1.gateway
    basic.outside.ip("-6", "route", "add", "2001:db8:e1::/64", "via", HOST_IPV6)
    ping = ["ping", "-6", "-c1", "-W1"]
    try:
        assert basic.outside.run([*ping, a1.gateway], check=False).returncode == 0
        assert not curl6(env, f"http://[{a1.ip}]:80/hostname")
        assert basic.outside.run([*ping, a1.ip], check=False).returncode != 0
    finally:
        basic.outside.ip("-6", "route", "del", "2001:db8:e1::/64", "via", HOST_IPV6)


def test_hairpin_to_a_published_port_over_ipv6(env: Env) -> None:
    """A container reaches a1's published port through the host's IPv6 address: from another
    network (b1), from a1's own network (a2) and from a1 itself (masqueraded back, as IPv4)."""
    get = "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {} 8080"
    hostname = inspect(env.d, "inspect", "a1")["Config"]["Hostname"]
    for name in ("b1", "a2", "a1", "o1"):
        res = env.d.cli("exec", name, "sh", "-c", get.format(HOST_IPV6), check=False)
        assert res.stdout.rstrip().endswith(hostname), (name, res.stdout)
