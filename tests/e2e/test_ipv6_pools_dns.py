"""Issue 15 end to end: IPv6 pools in default-address-pools, and the embedded resolver
forwarding to an IPv6 upstream (`--dns 2001:db8:203::1`), on both firewall backends.

One lab and one boxnetd per backend. Observers: `network inspect` against the pool, ping -6
between containers, and the lab's logging DNS server on the outside, which records each query
with the source address it came from (the daemon forwards from the host's namespace).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv6Network
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab import firewalls as fw
from boxnet.lab.dns_upstream import Upstream, dns_server
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6

pytestmark = pytest.mark.e2e
POOLS = [{"base": "10.60.0.0/16", "size": 24}, {"base": "2001:db8:a0::/48", "size": 64}]

Env = tuple[BasicLab, Daemon, Upstream]


@pytest.fixture(scope="module", params=fw.BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"pool6-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        upstream = dns_server(lab, basic.outside, "192.0.2.77", bind="::")
        config = {"default-address-pools": POOLS}
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param), config=config)
        yield basic, d, upstream
    finally:
        lab.close()


def subnets(d: Daemon, name: str) -> list[str]:
    net = json.loads(d.cli("network", "inspect", name, "--format", "json").stdout)[0]
    return [c["Subnet"] for c in net["IPAM"]["Config"]]


def endpoint(d: Daemon, name: str, net: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", name, "--format", "json").stdout)
    info = data[0] if isinstance(data, list) else data
    return dict(info["NetworkSettings"]["Networks"][net])


def test_ipv6_networks_take_the_ipv6_pool(env: Env) -> None:
    """Each family takes the next free subnet of its own pools, in order."""
    _basic, d, _up = env
    d.cli("network", "create", "--ipv6", "p1")
    d.cli("network", "create", "--ipv6", "p2")
    assert subnets(d, "p1") == ["10.60.0.0/24", "2001:db8:a0::/64"]
    assert subnets(d, "p2") == ["10.60.1.0/24", "2001:db8:a0:1::/64"]
    d.cli("run", "-d", "--name", "pa", "--network", "p1", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "pb", "--network", "p1", "busybox", "sleep", "1000")
    b6 = endpoint(d, "pb", "p1")["GlobalIPv6Address"]
    assert IPv6Network("2001:db8:a0::/64").supernet_of(IPv6Network(f"{b6}/128"))
    ping = d.cli("exec", "pa", "ping", "-6", "-c1", "-W2", b6, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_resolver_forwards_to_an_ipv6_upstream(env: Env) -> None:
    """--dns 2001:db8:203::1: the container's resolv.conf still names 127.0.0.11, and the
    embedded resolver forwards the outside name to the upstream over IPv6."""
    _basic, d, upstream = env
    res = d.cli("run", "--rm", "--network", "p1", "--dns", OUTSIDE_IPV6, "busybox",
                "nslookup", "-type=a", "far.example.test")  # fmt: skip
    assert "192.0.2.77" in res.stdout, res.stdout + res.stderr
    assert "far.example.test 1 " + HOST_IPV6 in upstream.queries()
    conf = d.cli("run", "--rm", "--network", "p1", "--dns", OUTSIDE_IPV6, "busybox",
                 "cat", "/etc/resolv.conf").stdout  # fmt: skip
    assert "nameserver 127.0.0.11" in conf and OUTSIDE_IPV6 not in conf.split("nameserver")[1]
