"""Issue 4: isolation as a reachability matrix, with real pings, and a foreign bridge untouched.

Containers on three user networks (two on the first), an internal network (two), the default
bridge, `host` and `none`. Every ordered pair is pinged; the table of expected vs observed is
printed (visible with -s, and in the failure report) and must match exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab import firewalls as fw
from boxnet.lab.matrix import Member, expected_reach, observe, render

pytestmark = pytest.mark.e2e

HOST_IP, OUTSIDE_IP = "203.0.113.2", "203.0.113.1"


@pytest.fixture(scope="module", params=fw.ALL)
def env(request: pytest.FixtureRequest) -> Iterator[tuple[BasicLab, Daemon, list[Member]]]:
    """The same matrix, asserted exactly, under both firewall backends and iptables-legacy."""
    lab = Lab(f"matrix-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param))
        yield basic, d, build_members(d)
    finally:
        lab.close()


def build_members(d: Daemon) -> list[Member]:
    for net in ("net1", "net2", "net3"):
        d.cli("network", "create", net)
    d.cli("network", "create", "--internal", "intnet")
    layout = [
        ("a1", "net1"), ("a2", "net1"), ("b1", "net2"), ("c1", "net3"),
        ("i1", "intnet"), ("i2", "intnet"), ("d1", "bridge"), ("h1", "host"), ("z1", "none"),
    ]  # fmt: skip

    def start(item: tuple[str, str]) -> Member:
        name, net = item
        d.cli("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "1000")
        data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
        data = data[0] if isinstance(data, list) else data
        settings = data["NetworkSettings"]["Networks"].get(net, {})
        ip = HOST_IP if net == "host" else settings.get("IPAddress") or None
        gateway = settings.get("Gateway") or None
        if net == "intnet":  # internal: no default route, but the bridge address is there
            gateway = json.loads(d.cli("network", "inspect", "--format", "json", net).stdout)
            gateway = (gateway[0] if isinstance(gateway, list) else gateway)["IPAM"]["Config"][0][
                "Gateway"
            ]
        return Member(name, net, ip, gateway, internal=net == "intnet")

    with ThreadPoolExecutor(9) as pool:
        return list(pool.map(start, layout))


def test_reachability_matrix(env: tuple[BasicLab, Daemon, list[Member]]) -> None:
    _basic, d, members = env
    expected = expected_reach(members, HOST_IP, OUTSIDE_IP)
    observed = observe(d, members, HOST_IP, OUTSIDE_IP)
    table = render(members, expected, observed, HOST_IP, OUTSIDE_IP)
    print("\n" + table)
    assert observed == expected, "\n" + table


def test_a_foreign_bridge_keeps_switching_and_routing(
    env: tuple[BasicLab, Daemon, list[Member]],
) -> None:
    """The tutorial's br0, made by hand in the host namespace, is no business of boxnet's."""
    basic, d, _members = env
    lab, host, firewall = basic.lab, basic.host, fw.of_args(d.extra_args)
    host.ip("link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    host.addr("br0", "10.99.0.254/24")
    for i, role in enumerate(("f1", "f2"), start=1):
        ns = lab.netns(role)
        lab.link(ns, "eth0", f"10.99.0.{i}/24", host, f"vf{i}", None)
        host.ip("link", "set", "dev", f"vf{i}", "master", "br0")
        lab.route(ns, "default", "10.99.0.254")
    ruleset = fw.ruleset_text(host, firewall)  # nft, plus the variant's iptables-save
    nft_backend = firewall == "nftables"
    assert ("table inet boxnet" in ruleset) == nft_backend
    if not nft_backend:  # the iptables backend: its chains, and still nothing about br0
        assert "BOXNET" in fw.iptables_save(host, firewall)
    assert "br0" not in ruleset
    assert lab["f1"].ping("10.99.0.2") and lab["f2"].ping("10.99.0.1")  # switched by br0
    basic.outside.ip("route", "add", "10.99.0.0/24", "via", HOST_IP)
    try:  # routed through the host's FORWARD path, out of a bridge that is not boxnet's
        assert lab["f1"].ping(OUTSIDE_IP)
        out = lab["f2"].run(["curl", "-s", "-m", "3", f"http://{OUTSIDE_IP}/"]).stdout
        assert json.loads(out)["client"] == "10.99.0.2"
    finally:
        basic.outside.ip("route", "del", "10.99.0.0/24")
    if not nft_backend:
        assert "-P FORWARD ACCEPT" in fw.ipt(host, firewall, "-S", "FORWARD")
        return
    policy = json.loads(
        host.run(["nft", "-j", "list", "chain", "inet", "boxnet", "forward"]).stdout
    )
    chain = next(x["chain"] for x in policy["nftables"] if "chain" in x)
    assert chain["policy"] == "accept"
