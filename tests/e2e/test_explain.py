"""Issue 19: `boxnet explain` agrees with the kernel, on both firewall backends.

Each case asks explain for a verdict, then sends the real packet (ping from a container, curl
from outside or the host, a crafted frame for 127.0.0.1 from a neighbour) and checks the two
agree; every rule explain quotes must be in the live ruleset (`nft list ruleset`,
`iptables-save`), read with the real tools. `boxnet topology --format json` is checked too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, echo_server_argv, script_argv, spoof
from boxnet.lab import firewalls as fw
from boxnet.lab.proc import run, tool

pytestmark = pytest.mark.e2e
HOST_IP, OUTSIDE_IP = "203.0.113.2", "203.0.113.1"
ECHO = echo_server_argv(80)


class Env:
    def __init__(self, basic: BasicLab, d: Daemon, firewall: str) -> None:
        self.basic, self.d, self.firewall = basic, d, firewall
        self.host, self.outside = basic.host, basic.outside

    def ip(self, name: str) -> str:
        data = json.loads(self.d.cli("inspect", "--format", "json", name).stdout)
        data = data[0] if isinstance(data, list) else data
        nets = data["NetworkSettings"]["Networks"]
        return str(next(iter(nets.values()))["IPAddress"])

    def explain(self, src: str, dst: str, *flags: str) -> dict[str, Any]:
        res = self.d.cli("explain", "--format", "json", *flags, src, dst, check=False)
        assert res.returncode in (0, 1), res.stderr
        result = dict(json.loads(res.stdout))
        assert res.returncode == (0 if result["Verdict"] == "allowed" else 1)
        ruleset = fw.ruleset_text(self.host, self.firewall)
        for step in result["Steps"]:
            if step["Rule"] and "policy accept" not in step["Rule"]:
                assert _bare(step["Rule"]) in ruleset, f"{step['Rule']!r} not in the live ruleset"
        return result

    def ping_from(self, name: str, ip: str) -> bool:
        res = self.d.cli("exec", name, "ping", "-c", "1", "-W", "1", ip, check=False)
        return res.returncode == 0

    def curl(self, ns: str, url: str) -> bool:
        where = self.outside if ns == "outside" else self.host
        argv = [tool("nsenter"), f"--net={where.path}", "--", "curl", "-s", "-m", "3", url]
        return run(argv, check=False).returncode == 0


def _bare(rule: str) -> str:
    """The rule as the live ruleset prints it: nft without "table .. chain ..: " and the map
    element, iptables without "-t TABLE"."""
    if rule.startswith("table "):
        return rule.split(": ", 1)[1].split("; element ")[0]
    return rule.split(" ", 2)[2]


def allowed(result: dict[str, Any]) -> bool:
    return bool(result["Verdict"] == "allowed")


def reasons(result: dict[str, Any]) -> str:
    return " | ".join(s["Reason"] for s in result["Steps"])


@pytest.fixture(scope="module", params=fw.ALL)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"explain-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param))
        for net in ("net1", "net2"):
            d.cli("network", "create", net)
        d.cli("network", "create", "--internal", "intnet")
        for name, net in (("a1", "net1"), ("a2", "net1"), ("b1", "net2"), ("i1", "intnet")):
            d.cli("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "1000")
        d.cli("run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:8090:80", "host",
              *ECHO)  # fmt: skip
        e = Env(basic, d, request.param)
        for _ in range(50):  # the echo server inside web starts listening
            if e.curl("outside", f"http://{HOST_IP}:8080/"):
                break
            subprocess.run(["sleep", "0.1"], check=False)
        yield e
    finally:
        lab.close()


def test_same_network_allowed(env: Env) -> None:
    result = env.explain("a1", "a2")
    assert allowed(result) and result["DestinationIP"] == env.ip("a2")
    assert env.ping_from("a1", env.ip("a2"))


def test_two_networks_blocked_by_isolation(env: Env) -> None:
    result = env.explain("a1", "b1")
    assert not allowed(result) and "isolation" in reasons(result)
    assert not env.ping_from("a1", env.ip("b1"))
    assert env.ping_from("b1", env.ip("b1"))  # control: b1 itself answers


def test_internal_network(env: Env) -> None:
    into = env.explain("a1", "i1")
    assert not allowed(into) and "internal" in reasons(into)
    assert not env.ping_from("a1", env.ip("i1"))
    out = env.explain("i1", OUTSIDE_IP)
    assert not allowed(out)
    assert not env.ping_from("i1", OUTSIDE_IP)
    assert env.ping_from("a1", OUTSIDE_IP)  # control: the outside answers a routed container
    assert allowed(env.explain("a1", OUTSIDE_IP))


def test_published_port_from_outside(env: Env) -> None:
    result = env.explain(OUTSIDE_IP, f"{HOST_IP}:8080")
    assert allowed(result) and result["NAT"] == [f"DNAT {HOST_IP}:8080 -> {env.ip('web')}:80"]
    assert "published port" in reasons(result)
    assert env.curl("outside", f"http://{HOST_IP}:8080/")
    unpublished = env.explain(OUTSIDE_IP, "a1")
    assert not allowed(unpublished)


def test_loopback_published_port_is_not_for_the_lan(env: Env) -> None:
    lan = env.explain(OUTSIDE_IP, f"{HOST_IP}:8090")
    assert not allowed(lan) and "loopback protection" in reasons(lan)
    assert not env.curl("outside", f"http://{HOST_IP}:8090/")
    host = env.explain("host", "127.0.0.1:8090")
    assert allowed(host) and env.curl("host", "http://127.0.0.1:8090/")
    # The CVE-2020-8558 frame: a neighbour sends to the host's MAC for 127.0.0.1:8090.
    attack = env.explain(OUTSIDE_IP, "127.0.0.1:8090")
    assert not allowed(attack) and "loopback protection" in reasons(attack)
    mac = env.host.ip_json("link", "show", "dev", "eth0")[0]["address"]
    argv = [tool("nsenter"), f"--net={env.outside.path}", "--", *script_argv(spoof)]
    argv += ["--ifname", "eth0", "--dst-mac", mac, "--dport", "8090"]
    answer = json.loads(run([*argv, "--dst-ip", "127.0.0.1"], timeout=15).stdout)
    assert not answer["answered"]
    control = json.loads(run([*argv[:-1], "8080", "--dst-ip", HOST_IP], timeout=15).stdout)
    assert control["answered"]


def test_topology_json_lists_what_the_kernel_has(env: Env) -> None:
    # Without --ui the page is on the socket only, and `boxnet topology` says how to get more.
    where = env.d.cli("topology")
    assert where.stdout == f"unix://{env.d.socket} GET /boxnet/topology\n"
    assert "--ui 127.0.0.1:PORT" in where.stderr
    doc = json.loads(env.d.cli("topology", "--format", "json").stdout)
    names = {c["name"] for c in doc["containers"]}
    assert {"a1", "a2", "b1", "i1", "web"} <= names
    links = {x["ifname"]: x for x in env.host.ip_json("-d", "link", "show")}
    for c in doc["containers"]:
        for e in c["endpoints"]:
            assert links[e["host_veth"]]["master"].startswith(("br-", "boxnet0"))
    assert doc["differences"] == []
    assert doc["network_reach"]["net1"]["net2"] is False
    assert doc["network_reach"]["net1"]["bridge"] is False
    pairs = doc["container_reach"]  # the pings of the tests above, as the page shows them
    assert (pairs["a1"]["a2"], pairs["a1"]["b1"], pairs["a1"]["i1"]) == (True, False, False)
    web = next(c for c in doc["containers"] if c["name"] == "web")
    assert {(p["host_ip"], p["host_port"]) for p in web["ports"]} == {
        ("0.0.0.0", 8080), ("127.0.0.1", 8090),
    }  # fmt: skip


def test_probe_shows_the_kernel_path(env: Env) -> None:
    """One real packet each way, traced by the kernel (nft monitor trace), agrees with explain."""
    blocked = env.explain("a1", "b1", "--probe")
    probe = blocked["Probe"]
    if env.firewall == "iptables-legacy":  # x_tables rules never reach an nftables trace
        assert probe["Verdict"] == "unknown" and "iptables-legacy" in probe["Note"], probe
        assert any("ip boxnet-trace" in line for line in probe["Raw"])  # the packet was traced
        return
    assert probe["Verdict"] == "blocked" and probe["Agrees"], probe
    drop = probe["Summary"]
    if env.firewall == "nftables":
        assert (
            "inet boxnet forward rule oifname @bridges iifname . oifname != @same_bridge drop"
            in drop
        )
    else:  # iptables-nft chains report to the same monitor
        assert "BOXNET-ISOLATION-STAGE-2" in drop and "br-" in drop
    passed = env.explain("a1", OUTSIDE_IP, "--probe")["Probe"]
    assert passed["Verdict"] == "allowed" and passed["Agrees"], passed
    assert any("masquerade" in line.lower() for line in passed["Trace"]), passed["Trace"]
    # The probe's own tables are gone again.
    assert "boxnet-trace" not in env.host.run(["nft", "list", "tables"]).stdout


def test_bad_input_is_explained(env: Env) -> None:
    for args, message in (
        (("nope", "a1"), "no container, address or 'host' called 'nope'"),
        (("a1", "a2:99999"), "'99999' in 'a2:99999' is not a port"),
        (("a1", "a2:80/sctp"), "'sctp' is not a protocol"),
        (("--probe", OUTSIDE_IP, "a1"), "--probe sends its packet from SRC"),
    ):
        res = env.d.cli("explain", *args, check=False)
        assert res.returncode == 1 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and res.stdout == ""
