"""Issue 15 + 19: `boxnet explain` over IPv6 agrees with the kernel, on both firewall backends.

Each case asks explain for a verdict about IPv6 addresses (or names with -6), then sends the real
IPv6 packet (ping -6 from a container, curl -g from the outside) and checks the two agree; every
rule explain quotes must be in the live ruleset (`nft list ruleset`, `iptables-save`,
`ip6tables-save`), read with the real tools.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, echo_server_argv
from boxnet.lab import firewalls as fw
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6

pytestmark = pytest.mark.e2e
ROUTED = "2001:db8:e6::/64"


class Env:
    def __init__(self, basic: BasicLab, d: Daemon, firewall: str) -> None:
        self.basic, self.d, self.firewall = basic, d, firewall

    def ip6(self, name: str) -> str:
        data = json.loads(self.d.cli("inspect", "--format", "json", name).stdout)
        data = data[0] if isinstance(data, list) else data
        return str(data["NetworkSettings"]["GlobalIPv6Address"])

    def ruleset(self) -> str:
        host = self.basic.host
        text = fw.ruleset_text(host, self.firewall)
        if self.firewall != "nftables":
            text += str(host.run(["ip6tables-save"]).stdout)
        return text

    def explain(self, src: str, dst: str, *flags: str) -> dict[str, Any]:
        res = self.d.cli("explain", "--format", "json", *flags, src, dst, check=False)
        assert res.returncode in (0, 1), res.stderr
        result = dict(json.loads(res.stdout))
        assert res.returncode == (0 if result["Verdict"] == "allowed" else 1)
        ruleset = self.ruleset()
        for step in result["Steps"]:
            if step["Rule"] and "policy accept" not in step["Rule"]:
                assert _bare(step["Rule"]) in ruleset, f"{step['Rule']!r} not in the live ruleset"
        return result

    def ping6(self, name: str, ip: str) -> bool:
        """Two tries (a routed first packet may wait for neighbour discovery)."""
        res = self.d.cli("exec", name, "ping", "-6", "-c2", "-i0.2", "-w2", ip, check=False)
        return res.returncode == 0

    def outside_curl(self, url: str) -> str:
        res = self.basic.outside.run(["curl", "-s", "-g", "-m", "3", url], check=False)
        return str(res.stdout) if res.returncode == 0 else ""


def _bare(rule: str) -> str:
    """The rule as the live ruleset prints it: nft without "table .. chain ..: " and the set or
    map element, iptables without "[ip6tables ]-t TABLE"."""
    if rule.startswith("table "):
        return rule.split(": ", 1)[1].split("; element ")[0]
    return rule.removeprefix("ip6tables ").split(" ", 2)[2]


def allowed(result: dict[str, Any]) -> bool:
    return bool(result["Verdict"] == "allowed")


def reasons(result: dict[str, Any]) -> str:
    return " | ".join(s["Reason"] for s in result["Steps"])


@pytest.fixture(scope="module", params=fw.BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"explain6-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param))
        for name, subnet, *opts in (
            ("net1", "2001:db8:e1::/64"), ("net2", "2001:db8:e2::/64"),
            ("intnet", "2001:db8:e4::/64", "--internal"),
            ("routed", ROUTED, "-o", "com.docker.network.bridge.gateway_mode_ipv6=routed"),
            ("v6only", "2001:db8:e7::/64", "--ipv4=false"),
        ):  # fmt: skip
            d.cli("network", "create", "--ipv6", "--subnet", subnet, *opts, name)
        for name, net in (("a1", "net1"), ("a2", "net1"), ("b1", "net2"), ("i1", "intnet"),
                          ("o1", "v6only"), ("o2", "v6only")):  # fmt: skip
            d.cli("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "1000")
        d.cli("run", "-d", "--name", "web", "--network", "net1", "-p", "8080:80", "-p",
              "[::1]:8091:80", "host", *echo_server_argv(80))  # fmt: skip
        d.cli("run", "-d", "--name", "r1", "--network", "routed", "-p", "8081:80", "host",
              *echo_server_argv(80))  # fmt: skip
        e = Env(basic, d, request.param)
        for _ in range(50):  # the echo server inside web starts listening
            if e.outside_curl(f"http://[{HOST_IPV6}]:8080/"):
                break
            time.sleep(0.1)
        yield e
    finally:
        lab.close()


def test_same_network_by_ipv6_address(env: Env) -> None:
    result = env.explain("a1", env.ip6("a2"))
    assert allowed(result) and result["DestinationIP"] == env.ip6("a2")
    assert result["SourceIP"] == env.ip6("a1")
    assert env.ping6("a1", env.ip6("a2"))
    # By names with -6: the same question, the IPv6 addresses picked.
    named = env.explain("a1", "a2", "-6")
    assert allowed(named) and named["DestinationIP"] == env.ip6("a2")


def test_ipv6_only_containers_are_explained_over_ipv6_by_name(env: Env) -> None:
    """Names of containers without IPv4 (--ipv4=false) need no -6."""
    same = env.explain("o1", "o2")
    assert allowed(same) and same["DestinationIP"] == env.ip6("o2")
    assert env.ping6("o1", env.ip6("o2"))
    across = env.explain("o1", "a1")
    assert not allowed(across) and across["DestinationIP"] == env.ip6("a1")
    assert not env.ping6("o1", env.ip6("a1"))
    out = env.explain("o1", "host")
    assert allowed(out) and ":" in out["DestinationIP"]


def test_two_networks_blocked_by_isolation_over_ipv6(env: Env) -> None:
    result = env.explain("a1", env.ip6("b1"))
    assert not allowed(result) and "isolation" in reasons(result)
    assert not env.ping6("a1", env.ip6("b1"))
    assert env.ping6("b1", env.ip6("b1"))  # control: b1 itself answers
    internal = env.explain("a1", env.ip6("i1"))
    assert not allowed(internal) and "internal" in reasons(internal)
    assert not env.ping6("a1", env.ip6("i1"))


def test_to_an_ipv6_outside_address(env: Env) -> None:
    out = env.explain("a1", OUTSIDE_IPV6)
    assert allowed(out) and any("MASQUERADE" in x for x in out["NAT"]), out
    assert env.ping6("a1", OUTSIDE_IPV6)
    served = json.loads(env.d.cli("exec", "web", "curl", "-s", "-g", "-m", "3",
                                  f"http://[{OUTSIDE_IPV6}]/").stdout)  # fmt: skip
    assert served["client"] == HOST_IPV6  # the masquerade explain names
    internal = env.explain("i1", OUTSIDE_IPV6)
    assert not allowed(internal)
    assert not env.ping6("i1", OUTSIDE_IPV6)


def test_published_port_reached_over_ipv6(env: Env) -> None:
    result = env.explain(OUTSIDE_IPV6, f"[{HOST_IPV6}]:8080")
    web = env.ip6("web")
    assert allowed(result) and result["NAT"] == [f"DNAT [{HOST_IPV6}]:8080 -> [{web}]:80"]
    assert "published port" in reasons(result)
    assert json.loads(env.outside_curl(f"http://[{HOST_IPV6}]:8080/"))["client"] == OUTSIDE_IPV6
    # Straight to a container of a nat-mode network, even with a route: blocked, and it is.
    direct = env.explain(OUTSIDE_IPV6, f"[{web}]:80")
    assert not allowed(direct) and "isolation" in reasons(direct)
    env.basic.outside.ip("-6", "route", "add", "2001:db8:e1::/64", "via", HOST_IPV6)
    try:
        assert not env.outside_curl(f"http://[{web}]:80/")
    finally:
        env.basic.outside.ip("-6", "route", "del", "2001:db8:e1::/64", "via", HOST_IPV6)


def test_hairpin_and_the_loopback_relay_over_ipv6(env: Env) -> None:
    """b1 (another network) reaches web's published port through the host's IPv6 address,
    masqueraded; [::1]:8091 serves the host (boxnetd's relay) and never the outside."""
    hairpin = env.explain("b1", f"[{HOST_IPV6}]:8080")
    assert allowed(hairpin) and "hairpin" in reasons(hairpin)
    tcp = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {HOST_IPV6} 8080"
    res = env.d.cli("exec", "b1", "sh", "-c", tcp, check=False)
    net1_gw = "2001:db8:e1::1"  # the masquerade: web sees its own network's gateway
    assert "{" in res.stdout, res
    assert json.loads(res.stdout[res.stdout.index("{") :])["client"] == net1_gw, res.stdout
    host = env.explain("host", "[::1]:8091")
    assert allowed(host) and host["NAT"] == [f"RELAY [::1]:8091 -> [{env.ip6('web')}]:80"]
    assert "loopback relay" in reasons(host)
    res = env.basic.host.run(["curl", "-s", "-g", "-m", "3", "http://[::1]:8091/"], check=False)
    assert res.returncode == 0 and "client" in res.stdout
    lan = env.explain(OUTSIDE_IPV6, f"[{HOST_IPV6}]:8091")
    assert not allowed(lan) and "loopback protection" in reasons(lan)
    assert not env.outside_curl(f"http://[{HOST_IPV6}]:8091/")
    attack = env.explain(OUTSIDE_IPV6, "[::1]:8091")
    assert not allowed(attack) and "loopback protection" in reasons(attack)


def test_routed_network_published_port_only(env: Env) -> None:
    """gateway_mode_ipv6=routed: the outside reaches r1's published port at r1's own address,
    and nothing else of r1 but ICMPv6; explain says so, the packets agree."""
    r1 = env.ip6("r1")
    port = env.explain(OUTSIDE_IPV6, f"[{r1}]:80")
    assert allowed(port) and "routed IPv6" in reasons(port) and port["NAT"] == []
    other = env.explain(OUTSIDE_IPV6, f"[{r1}]:81")
    assert not allowed(other)
    ping = env.explain(OUTSIDE_IPV6, r1)
    assert allowed(ping)
    # From another of boxnet's networks: isolation, published or not (TCP from a1 confirms).
    across = env.explain("a1", f"[{r1}]:80")
    assert not allowed(across) and "isolation" in reasons(across)
    tcp = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {} 80"
    res = env.d.cli("exec", "a1", "sh", "-c", tcp.format(r1), check=False)
    assert "HTTP" not in res.stdout
    res = env.d.cli("exec", "a1", "sh", "-c", tcp.format(env.ip6("web")), check=False)
    assert "HTTP" in res.stdout  # control: the same probe reaches a peer on its own network
    env.basic.outside.ip("-6", "route", "add", ROUTED, "via", HOST_IPV6)
    try:
        assert json.loads(env.outside_curl(f"http://[{r1}]:80/"))["client"] == OUTSIDE_IPV6
        closed = env.basic.outside.run(
            ["curl", "-s", "-g", "-m", "2", f"http://[{r1}]:81/"], check=False
        )
        assert closed.returncode == 28  # timed out: dropped, not refused by r1's kernel
        assert env.basic.outside.run(["ping", "-6", "-c1", "-W2", r1], check=False).returncode == 0
    finally:
        env.basic.outside.ip("-6", "route", "del", ROUTED, "via", HOST_IPV6)


def test_mixed_families_and_probe_are_refused(env: Env) -> None:
    for args, message in (
        ((OUTSIDE_IPV6, "203.0.113.2:8080"), "not of one address family"),
        (("-6", "a1", "203.0.113.1"), "not of one address family"),
        (("a1", "[2001:db8::1"), "is not [IPV6]:PORT"),
        (("--probe", "a1", OUTSIDE_IPV6), "--probe traces IPv4 packets only"),
    ):
        res = env.d.cli("explain", *args, check=False)
        assert res.returncode == 1 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and res.stdout == ""
