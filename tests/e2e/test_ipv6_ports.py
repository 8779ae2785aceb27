"""Issue 15 end to end: publishing over IPv6, on both firewall backends.

One lab (host + outside + client2, IPv6 on the outside links) and one boxnetd per backend.
Observers: the lab echo server in the container reports the client address it saw (HTTP over
IPv6 from the outside, from client2 two hops away, from the host), crafted Ethernet frames
(boxnet.lab.spoof, the CVE-2020-8558 frame with ::1 as destination), `nft -j` / ip6tables-save,
and `ss` for the ::1 proxy's socket.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import (
    BasicLab,
    Daemon,
    Lab,
    Netns,
    basic_lab,
    echo_server_argv,
    script_argv,
    spoof,
    venv_bin,
)
from boxnet.lab import firewalls as fw
from boxnet.lab.proc import run, tool
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6

pytestmark = pytest.mark.e2e
HOST_IP = "203.0.113.2"
OUTSIDE_IP = "203.0.113.1"
CLIENT2_IPV6 = "2001:db8:198::2"
ECHO = echo_server_argv(80)

Env = tuple[BasicLab, Daemon, str]


@pytest.fixture(scope="module", params=fw.BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"pub6-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param))
        d.cli("network", "create", "--ipv6", "--subnet", "2001:db8:1::/64", "pub6")
        d.cli("run", "-d", "--name", "web", "--network", "pub6", "-p", "8080:80",
              "-p", "[::1]:8090:80", "-p", "[::1]:8090:80/udp", "-p", "127.0.0.1:8091:80",
              "host", *ECHO)  # fmt: skip
        assert wait_http(basic.outside, f"http://[{HOST_IPV6}]:8080/")
        yield basic, d, request.param
    finally:
        lab.close()


def in_ns(ns: Netns) -> list[str]:
    return [tool("nsenter"), f"--net={ns.path}", "--"]


def client_seen(ns: Netns, url: str) -> str | None:
    """The client address the echo server saw, or None when the request failed."""
    res = run([*in_ns(ns), "curl", "-s", "-g", "-m", "3", url], check=False)
    if res.returncode != 0 or not res.stdout:
        return None
    return str(json.loads(res.stdout)["client"])


def udp_echo6(ns: Netns, ip: str, port: int) -> str | None:
    """The client address the echo server saw for one UDP datagram, or None."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(2)\n"
        f"s.sendto(b'x',({ip!r},{port}))\n"
        "try: print(s.recv(100).decode())\n"
        "except OSError: sys.exit(1)\n"
    )
    res = ns.run([str(venv_bin() / "python"), "-c", code], check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def wait_http(ns: Netns, url: str, tries: int = 50) -> bool:
    for _ in range(tries):
        if client_seen(ns, url) is not None:
            return True
        subprocess.run(["sleep", "0.1"], check=False)
    return False


def probe(ns: Netns, mac: str, ip: str, port: int) -> dict[str, Any]:
    argv = [*in_ns(ns), *script_argv(spoof), "--ifname", "eth0", "--dst-mac", mac]
    res = run([*argv, "--dst-ip", ip, "--dport", str(port)], timeout=15)
    return dict(json.loads(res.stdout))


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return dict(data[0] if isinstance(data, list) else data)


def dnats6(env: Env) -> set[tuple[int, str]]:
    """(host port, "[container ip]:port") of every all-address IPv6 DNAT in the kernel."""
    basic, _d, firewall = env
    if firewall == "nftables":
        out = basic.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any6"]).stdout
        elems = next(x["map"] for x in json.loads(out)["nftables"] if "map" in x).get("elem", [])
        return {(int(k["concat"][1]), f"[{v['concat'][0]}]:{v['concat'][1]}") for k, v in elems}
    lines = basic.host.run(["ip6tables-save", "-t", "nat"]).stdout.splitlines()
    found = set()
    for line in lines:
        words = line.split()
        if line.startswith("-A BOXNET ") and "DNAT" in words and "-d" not in words:
            found.add((int(words[words.index("--dport") + 1]), words[-1]))
    return found


def test_published_port_answers_both_families_with_the_real_client(env: Env) -> None:
    basic, d, _fw = env
    web6 = inspect(d, "web")["NetworkSettings"]["Networks"]["pub6"]["GlobalIPv6Address"]
    url6 = f"http://[{HOST_IPV6}]:8080/"
    assert client_seen(basic.outside, url6) == OUTSIDE_IPV6
    assert client_seen(basic.client2, url6) == CLIENT2_IPV6  # routed through outside
    assert client_seen(basic.outside, f"http://{HOST_IP}:8080/") == OUTSIDE_IP
    # The host itself, through its IPv6 address and through ::1 (the proxy).
    assert client_seen(basic.host, url6) is not None
    assert client_seen(basic.host, "http://[::1]:8090/") is not None
    assert udp_echo6(basic.host, "::1", 8090)  # the relay carries UDP too
    assert client_seen(basic.host, "http://127.0.0.1:8091/") is not None
    # Another dual-stack container (hairpin over IPv6, masqueraded like IPv4's).
    d.cli("run", "-d", "--name", "peer", "--network", "pub6", "host", "sleep", "1000")
    out = d.cli("exec", "peer", "curl", "-s", "-g", "-m", "3", url6).stdout
    assert json.loads(out)["client"], out
    d.cli("rm", "-f", "peer")
    lines = set(d.cli("port", "web").stdout.splitlines())
    assert lines == {
        "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> [::]:8080",
        "80/tcp -> [::1]:8090",
        "80/udp -> [::1]:8090",
        "80/tcp -> 127.0.0.1:8091",
    }
    assert (8080, f"[{web6}]:80") in dnats6(env)
    ports = inspect(d, "web")["NetworkSettings"]["Ports"]["80/tcp"]
    assert {"HostIp": "::", "HostPort": "8080"} in ports


def test_every_ipv6_publish_form(env: Env) -> None:
    basic, d, _fw = env
    d.cli("run", "-d", "--name", "forms", "--network", "pub6", "-p", "[::]:8180:80",
          "-p", f"[{HOST_IPV6}]::80", "host", *ECHO)  # fmt: skip
    ports = inspect(d, "forms")["NetworkSettings"]["Ports"]["80/tcp"]
    by_ip = {p["HostIp"]: int(p["HostPort"]) for p in ports}
    assert set(by_ip) == {"::", HOST_IPV6}, ports
    assert wait_http(basic.outside, f"http://[{HOST_IPV6}]:8180/")
    assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:{by_ip[HOST_IPV6]}/") == OUTSIDE_IPV6
    assert client_seen(basic.client2, f"http://[{HOST_IPV6}]:8180/") == CLIENT2_IPV6
    # [::] is IPv6 only: nothing answers 8180 over IPv4.
    assert client_seen(basic.outside, f"http://{HOST_IP}:8180/") is None
    lines = d.cli("port", "forms", "80").stdout.splitlines()
    assert sorted(lines) == sorted(["[::]:8180", f"[{HOST_IPV6}]:{by_ip[HOST_IPV6]}"])
    d.cli("rm", "-f", "forms")
    assert not any(port == 8180 for port, _to in dnats6(env))
    assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:8180/") is None


def test_ipv6_loopback_publishing_is_host_only(env: Env) -> None:
    """A LAN neighbour's frame to the host's MAC for [::1]:8090 gets nothing; the same frame to
    the host's IPv6 address for 8080 is answered (the control), and the host itself reaches ::1."""
    basic, d, _fw = env
    host_mac = str(basic.host.ip_json("link", "show", "dev", "eth0")[0]["address"])
    assert probe(basic.outside, host_mac, HOST_IPV6, 8080)["flags"] == "SA"
    assert probe(basic.outside, host_mac, "::1", 8090) == {
        "answered": False,
        "flags": "",
        "from": "",
    }
    assert not probe(basic.outside, host_mac, "::1", 8080)["answered"]
    assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:8090/") is None
    assert client_seen(basic.host, "http://[::1]:8090/") is not None
    # The proxy's socket is on ::1 alone.
    ss = basic.host.run(["ss", "-Htln", "sport = :8090"]).stdout.splitlines()
    assert [line.split()[3] for line in ss] == ["[::1]:8090"], ss
    # The relay is the daemon's: a restarted daemon serves it again (the container lives on).
    d.restart()
    assert wait_http(basic.host, "http://[::1]:8090/")


def test_ipv4_only_container_publishes_on_ipv4_only(env: Env) -> None:
    """On an IPv4-only network `-p 8085:80` publishes 0.0.0.0 alone (no proxy carries IPv6 to an
    IPv4 address, as in Docker with userland-proxy=false); an explicit IPv6 address is refused."""
    basic, d, _fw = env
    d.cli("run", "-d", "--name", "web4", "-p", "8085:80", "host", *ECHO)
    assert wait_http(basic.outside, f"http://{HOST_IP}:8085/")
    assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:8085/") is None
    assert d.cli("port", "web4").stdout == "80/tcp -> 0.0.0.0:8085\n"
    before = d.cli("ps", "-aq").stdout
    res = d.cli("run", "-d", "-p", "[::]:8086:80", "busybox", "sleep", "100", check=False)
    assert res.returncode != 0 and "has no IPv6 address" in res.stderr
    assert "Traceback" not in res.stderr and d.cli("ps", "-aq").stdout == before
    d.cli("rm", "-f", "web4")


def test_unpublish_closes_both_families(env: Env) -> None:
    basic, d, _fw = env
    d.cli("rm", "-f", "web")
    assert not any(port == 8080 for port, _to in dnats6(env))
    assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:8080/") is None
    assert client_seen(basic.host, "http://[::1]:8090/") is None
    assert basic.host.run(["ss", "-Htln", "sport = :8090"]).stdout.strip() == ""


def test_ipv6_only_network(env: Env) -> None:
    """--ipv4=false --ipv6 (Docker 28): the bridge and the container have no IPv4 address at all,
    IPv6 works inside, out (NAT66) and in through `-p` (on [::] only); names answer AAAA only."""
    basic, d, _fw = env
    d.cli("network", "create", "--ipv6", "--ipv4=false", "--subnet", "2001:db8:6::/64", "only6")
    net = json.loads(d.cli("network", "inspect", "only6", "--format", "json").stdout)[0]
    assert net["EnableIPv4"] is False and net["EnableIPv6"] is True
    assert [c["Subnet"] for c in net["IPAM"]["Config"]] == ["2001:db8:6::/64"]
    bridge = f"br-{net['Id'][:12]}"
    assert basic.host.ip_json("-4", "addr", "show", "dev", bridge) in ([], [{}])
    d.cli("run", "-d", "--name", "v6only", "--network", "only6", "-p", "8280:80", "host", *ECHO)
    d.cli("run", "-d", "--name", "v6peer", "--network", "only6", "busybox", "sleep", "1000")
    ep = inspect(d, "v6only")["NetworkSettings"]["Networks"]["only6"]
    assert ep["IPAddress"] == "" and ep["GlobalIPv6Address"].startswith("2001:db8:6::")
    inside = json.loads(d.cli("exec", "v6only", "ip", "-j", "-4", "addr", "show", "dev", "eth0")
                        .stdout or "[]")  # fmt: skip
    assert [a for x in inside for a in x.get("addr_info", [])] == []
    assert d.cli("port", "v6only").stdout == "80/tcp -> [::]:8280\n"
    assert wait_http(basic.outside, f"http://[{HOST_IPV6}]:8280/")
    assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:8280/") == OUTSIDE_IPV6
    assert client_seen(basic.outside, f"http://{HOST_IP}:8280/") is None
    out = d.cli("exec", "v6only", "curl", "-s", "-g", "-m", "3", f"http://[{OUTSIDE_IPV6}]/")
    assert json.loads(out.stdout)["client"] == HOST_IPV6
    answer = d.cli("exec", "v6peer", "nslookup", "-type=aaaa", "v6only").stdout
    assert ep["GlobalIPv6Address"] in answer, answer
    assert d.cli("exec", "v6peer", "ping", "-6", "-c1", "-W2", "v6only").returncode == 0
    refused = d.cli("run", "-d", "--network", "only6", "-p", "0.0.0.0:8281:80", "busybox",
                    "sleep", "100", check=False)  # fmt: skip
    assert refused.returncode != 0 and "has no IPv4 address" in refused.stderr
    bad = d.cli("network", "create", "--ipv4=false", "nofamily", check=False)
    assert bad.returncode != 0 and "--ipv6" in bad.stderr and "Traceback" not in bad.stderr
    d.cli("rm", "-f", "v6only", "v6peer")


def test_routed_ipv6_mode(env: Env) -> None:
    """gateway_mode_ipv6=routed: no NAT66 (the outside sees the container's own address), and
    with a route to the subnet the outside reaches the container's published port at its own
    address, but not an unpublished one (both served by the same container)."""
    basic, d, _fw = env
    d.cli("network", "create", "--ipv6", "--subnet", "2001:db8:7::/64",
          "-o", "com.docker.network.bridge.gateway_mode_ipv6=routed", "routed6")  # fmt: skip
    serve = f"{shlex.join(ECHO[:-1])} 81 & exec {shlex.join(ECHO)}"
    d.cli("run", "-d", "--name", "rt", "--network", "routed6", "-p", "8380:80", "host",
          "sh", "-c", serve)  # fmt: skip
    rt6 = inspect(d, "rt")["NetworkSettings"]["Networks"]["routed6"]["GlobalIPv6Address"]
    assert wait_http(basic.outside, f"http://[{HOST_IPV6}]:8380/")
    basic.outside.ip("-6", "route", "add", "2001:db8:7::/64", "via", HOST_IPV6)
    try:
        assert client_seen(basic.outside, f"http://[{rt6}]:80/") == OUTSIDE_IPV6
        assert client_seen(basic.outside, f"http://[{rt6}]:81/") is None
        assert client_seen(basic.outside, f"http://[{HOST_IPV6}]:8380/") == OUTSIDE_IPV6
        ping = basic.outside.run(["ping", "-6", "-c1", "-W2", rt6], check=False)
        assert ping.returncode == 0, ping.stdout
        # Out without NAT66: the outside sees the container's own address.
        out = d.cli("exec", "rt", "curl", "-s", "-g", "-m", "3", f"http://[{OUTSIDE_IPV6}]/")
        assert json.loads(out.stdout)["client"] == rt6
        # The container's unpublished port answers inside (the control for :81 above).
        inside = d.cli("exec", "rt", "curl", "-s", "-g", "-m", "3", f"http://[{rt6}]:81/")
        assert inside.returncode == 0 and json.loads(inside.stdout)["client"]
        d.cli("rm", "-f", "rt")
    finally:
        basic.outside.ip("-6", "route", "del", "2001:db8:7::/64", "via", HOST_IPV6)
    mode = "com.docker.network.bridge.gateway_mode_ipv6=open"
    bad = d.cli("network", "create", "--ipv6", "-o", mode, "bad6", check=False)
    assert bad.returncode != 0 and "expected nat or routed" in bad.stderr
