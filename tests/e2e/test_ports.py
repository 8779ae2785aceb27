"""Issue 3 end to end: port publishing, every -p form, loopback-only, allocation, bad input.

One lab (host + outside + client2) and one boxnetd for the module, once per firewall set-up
(nftables, iptables, iptables-legacy). Observers: HTTP and UDP through
the lab echo server (it reports the client address the container saw), crafted Ethernet frames
(boxnet.lab.spoof: the CVE-2020-8558 attack), `nft -j`, /proc, and the daemon's `ps -a`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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

pytestmark = pytest.mark.e2e
HOST_IP = "203.0.113.2"
OUTSIDE_IP = "203.0.113.1"
PY = str(venv_bin() / "python")
ECHO = echo_server_argv(80)


class Env:
    def __init__(self, basic: BasicLab, d: Daemon, firewall: str) -> None:
        self.basic, self.d, self.firewall = basic, d, firewall
        self.host, self.outside, self.client2 = basic.host, basic.outside, basic.client2

    def inspect(self, name: str) -> dict[str, Any]:
        data = json.loads(self.d.cli("inspect", "--format", "json", name).stdout)
        return dict(data[0] if isinstance(data, list) else data)

    def mac(self, ns: Netns, ifname: str) -> str:
        return str(ns.ip_json("link", "show", "dev", ifname)[0]["address"])

    def ps_all(self) -> list[str]:
        return sorted(self.d.cli("ps", "-aq").stdout.split())


def shim_processes(d: Daemon) -> set[str]:
    """Short ids of the live shims of d (named bx-<short id>; their command line, the zygote's,
    names d's work directory), read from /proc; bounded wait for aborted ones to finish exiting."""
    found: set[str] = set()
    for _ in range(50):
        found = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if comm.startswith("bx-") and str(d.workdir).encode() in cmdline and state != "Z":
                found.add(comm[3:])
        if len(found) <= len(running_ids(d)):
            break
        time.sleep(0.1)
    return found


def running_ids(d: Daemon) -> list[str]:
    return d.cli("ps", "-q").stdout.split()


def running(d: Daemon, cid: str) -> bool:
    return cid in running_ids(d)


def http_client(argv_prefix: list[str], url: str) -> str | None:
    """The client address the echo server saw, or None when the request failed."""
    res = run([*argv_prefix, "curl", "-s", "-m", "3", url], check=False)
    if res.returncode != 0 or not res.stdout:
        return None
    return str(json.loads(res.stdout)["client"])


def in_ns(ns: Netns) -> list[str]:
    return [tool("nsenter"), f"--net={ns.path}", "--"]


def udp_echo(ns: Netns, ip: str, port: int) -> str | None:
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
        f"s.sendto(b'x',({ip!r},{port}))\n"
        "try: print(s.recv(100).decode())\n"
        "except OSError: sys.exit(1)\n"
    )
    res = ns.run([PY, "-c", code], check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def probe(prefix: list[str], ifname: str, mac: str, ip: str, port: int) -> dict[str, Any]:
    """Send the crafted SYN from inside a namespace (prefix enters it) and report the answer."""
    argv = [*prefix, *script_argv(spoof), "--ifname", ifname, "--dst-mac", mac]
    res = run([*argv, "--dst-ip", ip, "--dport", str(port)], timeout=15)
    return dict(json.loads(res.stdout))


@pytest.fixture(scope="module", params=fw.ALL)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    # The same suite under both backends, and under iptables forced to the legacy binaries.
    lab = Lab(f"ports-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param))
        d.cli(
            "run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:8090:80", "host", *ECHO
        )
        e = Env(basic, d, request.param)
        assert wait_http(e.outside, f"http://{HOST_IP}:8080/")
        yield e
    finally:
        lab.close()


def wait_http(ns: Netns, url: str, tries: int = 50) -> bool:
    for _ in range(tries):
        if http_client(in_ns(ns), url) is not None:
            return True
        subprocess.run(["sleep", "0.1"], check=False)
    return False


def test_published_port_from_everywhere(env: Env) -> None:
    d = env.d
    url = f"http://{HOST_IP}:8080/"
    # External clients keep their own address: the container sees the real client.
    assert http_client(in_ns(env.outside), url) == OUTSIDE_IP
    assert http_client(in_ns(env.client2), url) == "198.51.100.2"
    # The host itself, through 127.0.0.1 and through its own address.
    assert http_client(in_ns(env.host), "http://127.0.0.1:8080/") is not None
    assert http_client(in_ns(env.host), url) is not None
    # Another container and the container itself (hairpin through the host address).
    d.cli("run", "-d", "--name", "other", "host", "sleep", "1000")
    assert http_client(
        [str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}", "exec", "other"], url
    )
    assert http_client([str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}", "exec", "web"], url)
    assert d.cli("port", "web").stdout == "80/tcp -> 0.0.0.0:8080\n80/tcp -> 127.0.0.1:8090\n"
    # Docker's format: with a port given, only the host addresses.
    assert d.cli("port", "web", "80").stdout == "0.0.0.0:8080\n127.0.0.1:8090\n"
    assert d.cli("port", "web", "80/tcp").stdout == "0.0.0.0:8080\n127.0.0.1:8090\n"
    d.cli("rm", "-f", "other")


def test_every_publish_form(env: Env) -> None:
    d = env.d
    d.cli("run", "-d", "--name", "holder", "-p", "9100:80", "busybox", "sleep", "1000")
    serve = f"{shlex.join(ECHO[:-1])} 7001 & exec {shlex.join(ECHO)}"
    d.cli(
        "run", "-d", "--name", "forms", "-p", "80", "-p", f"{HOST_IP}::80",
        "-p", f"{HOST_IP}:8081:80", "-p", "127.0.0.1:8091:80", "-p", "9000-9002:7000-7002",
        "-p", "9100-9110:80", "-p", "5353:80/udp", "-p", "9999:9999/sctp",
        "--expose", "81", "--expose", "82/udp", "-P", "host", "sh", "-c", serve,
    )  # fmt: skip
    ports = json.loads(json.dumps(env.inspect("forms")["NetworkSettings"]["Ports"]))
    by = {(k, b["HostIp"]): int(b["HostPort"]) for k, v in ports.items() for b in v}
    low, high = (
        int(x)
        for x in env.host.run(["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).stdout.split()
    )
    eph_any = [int(b["HostPort"]) for b in ports["80/tcp"] if b["HostIp"] == "0.0.0.0"]
    assert any(low <= p <= high for p in eph_any)
    assert 9101 in eph_any  # 9100 is taken by holder: any free port of the range
    eph_addr = [int(b["HostPort"]) for b in ports["80/tcp"] if b["HostIp"] == HOST_IP]
    assert 8081 in eph_addr and any(low <= p <= high for p in eph_addr)
    assert by[("7001/tcp", "0.0.0.0")] == 9001 and by[("9999/sctp", "0.0.0.0")] == 9999
    assert low <= by[("81/tcp", "0.0.0.0")] <= high and low <= by[("82/udp", "0.0.0.0")] <= high
    assert all(set(b) == {"HostIp", "HostPort"} for v in ports.values() for b in v)
    # Real packets through the TCP forms, and a UDP echo through /udp.
    out = in_ns(env.outside)
    assert wait_http(env.outside, f"http://{HOST_IP}:9001/")
    # Two servers start in that container (7001 and 80): wait for the one on 80 as well.
    assert wait_http(env.outside, f"http://{HOST_IP}:{eph_any[0]}/")
    for port in [*eph_any, *eph_addr]:
        assert http_client(out, f"http://{HOST_IP}:{port}/") == OUTSIDE_IP, port
    assert http_client(out, f"http://{HOST_IP}:9001/") == OUTSIDE_IP
    assert http_client(in_ns(env.host), "http://127.0.0.1:8091/") is not None
    assert udp_echo(env.outside, HOST_IP, 5353) == OUTSIDE_IP
    # SCTP: the mapping is in the kernel (independent observer: nft -j or iptables -S).
    ip = env.inspect("forms")["NetworkSettings"]["IPAddress"]
    assert ("sctp", 9999, f"{ip}:9999") in published(env)
    d.cli("rm", "-f", "forms", "holder")


def test_loopback_publishing_is_host_only(env: Env) -> None:
    host_mac = env.mac(env.host, "eth0")
    out = in_ns(env.outside)
    # Control: the same crafted frame to the host address is answered, so the probe can fail.
    assert probe(out, "eth0", host_mac, HOST_IP, 8080)["flags"] == "SA"
    # The attack (CVE-2020-8558): a neighbour's frame to the host's MAC for 127.0.0.1.
    assert probe(out, "eth0", host_mac, "127.0.0.1", 8090) == {
        "answered": False,
        "flags": "",
        "from": "",
    }
    assert not probe(out, "eth0", host_mac, "127.0.0.1", 8080)["answered"]
    assert http_client(out, f"http://{HOST_IP}:8090/") is None
    assert http_client(in_ns(env.host), "http://127.0.0.1:8090/") is not None
    assert env.host.run(["sysctl", "-n", "net.ipv4.conf.eth0.route_localnet"]).stdout.strip() == "0"


def test_containers_cannot_reach_host_loopback(env: Env) -> None:
    env.basic.lab.http_server(env.host, 7700)  # the host's service, listening on every address
    env.d.cli("run", "-d", "--name", "prober", "host", "sleep", "1000")
    key = env.inspect("prober")["NetworkSettings"]["SandboxKey"]
    inside = [tool("nsenter"), f"--net={key}", "--"]
    gw_mac = env.mac(env.host, "boxnet0")
    assert probe(inside, "eth0", gw_mac, "172.17.0.1", 7700)["flags"] == "SA"  # control
    assert not probe(inside, "eth0", gw_mac, "127.0.0.1", 7700)["answered"]
    assert not probe(inside, "eth0", gw_mac, "127.0.0.1", 8090)["answered"]
    env.d.cli("rm", "-f", "prober")


def test_allocation_conflicts_and_lifecycle(env: Env) -> None:
    d = env.d
    before = env.ps_all()
    dup = d.cli("run", "-d", "-p", "8080:80", "busybox", "sleep", "100", check=False)
    assert dup.returncode != 0
    assert "Bind for 0.0.0.0:8080 failed: port is already allocated" in dup.stderr
    env.basic.lab.http_server(env.host, 7777)  # a host process holds 7777
    held = d.cli("run", "-d", "-p", "7777:80", "busybox", "sleep", "100", check=False)
    assert held.returncode != 0 and "0.0.0.0:7777 failed: port is already allocated" in held.stderr
    assert env.ps_all() == before
    # The shim was forked before the network failed (launcher.launch): it must be gone too,
    # and its command never run.
    assert shim_processes(env.d) == {c[:12] for c in before if running(env.d, c)}

    def start(i: int) -> subprocess.CompletedProcess[str]:
        return d.cli("run", "-d", "--name", f"par{i}", "-p", "80", "busybox", "sleep", "1000")

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(start, range(20)))
    got = [int(d.cli("port", f"par{i}", "80").stdout.rsplit(":", 1)[1]) for i in range(20)]
    assert len(set(got)) == 20
    d.cli("rm", "-f", *[f"par{i}" for i in range(20)])

    d.cli("run", "-d", "--name", "cycle", "-p", "8181:80", "-p", "80", "host", *ECHO)
    assert wait_http(env.outside, f"http://{HOST_IP}:8181/")
    eph = int(d.cli("port", "cycle").stdout.split()[-1].rsplit(":", 1)[1])
    d.cli("stop", "-t", "1", "cycle")
    assert not any(port in (8181, eph) for _proto, port, _to in published(env))
    assert http_client(in_ns(env.outside), f"http://{HOST_IP}:8181/") is None
    d.cli("start", "cycle")
    assert wait_http(env.outside, f"http://{HOST_IP}:8181/")
    lines = d.cli("port", "cycle").stdout.splitlines()
    assert "80/tcp -> 0.0.0.0:8181" in lines and f"80/tcp -> 0.0.0.0:{eph}" not in lines
    d.cli("rm", "-f", "cycle")


def published(env: Env) -> set[tuple[str, int, str]]:
    """(proto, host port, "ip:port") of every all-address DNAT, read from the firewall the daemon
    runs: nftables' map elements or iptables' (or iptables-legacy's) BOXNET chain."""
    if env.firewall == "nftables":
        data = json.loads(
            env.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout
        )
        elems = next(x["map"] for x in data["nftables"] if "map" in x).get("elem", [])
        return {
            (k["concat"][0], int(k["concat"][1]), f"{v['concat'][0]}:{v['concat'][1]}")
            for k, v in elems
        }
    out = set()
    for line in fw.ipt(env.host, env.firewall, "-t", "nat", "-S", "BOXNET"):
        words = line.split()
        if "DNAT" in words and "-d" not in words:
            proto = words[words.index("-p") + 1]
            port = int(words[words.index("--dport") + 1])
            out.add((proto, port, words[words.index("--to-destination") + 1]))
    return out


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("70000:80", "70000"),
        ("0:80", "host port 0"),
        ("80:", "no container port"),
        ("abc", '"abc"'),
        ("1.2.3.4:80", "IP:HOSTPORT:CPORT"),
        ("9002-9000:80", "9002-9000"),
        ("9000-9001:80-82", "80-82"),
        ("80/icmp", '"icmp"'),
        ("192.0.2.99:80:80", "192.0.2.99"),
        ("[::1]:80:80", "IPv6"),
    ],
)
def test_bad_publish_specs(env: Env, spec: str, names: str) -> None:
    before = env.ps_all()
    res = env.d.cli("run", "-d", "-p", spec, "busybox", "sleep", "100", check=False)
    assert res.returncode != 0
    assert res.stderr.startswith("Error: ") and names in res.stderr
    assert "Traceback" not in res.stderr
    assert env.ps_all() == before


def test_no_socket_listens_for_published_ports(env: Env) -> None:
    # The data path is the kernel's: no proxy process listens on 8080 in the host namespace.
    ss = env.host.run(["ss", "-Htln", "sport = :8080"]).stdout
    assert ss.strip() == ""
