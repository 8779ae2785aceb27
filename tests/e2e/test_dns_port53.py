"""Issue 13 end to end: port 53 inside a container is the container's own.

The embedded resolver listens on 127.0.0.11 on ephemeral ports, and a table of boxnet's own
(`ip boxnet-dns`) in the container's namespace redirects 127.0.0.11:53 to them. So a container
runs its own DNS server on 0.0.0.0:53 and [::]:53 (UDP and TCP) and publishes it, while names
still resolve through 127.0.0.11 in it. One lab per firewall backend: "host" runs boxnetd,
"outside" (203.0.113.1) runs the daemon's upstream. Observers: hand-built queries (lab.dns_query)
from outside, the host, other containers and the container itself; `ss` inside containers;
`nft -j` in the container's namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, venv_bin
from boxnet.lab.dns_query import query
from boxnet.lab.dns_upstream import Upstream, dns_server

pytestmark = pytest.mark.e2e


@dataclass
class Env:
    basic: BasicLab
    d: Daemon
    upstream: Upstream  # outside, the daemon's dns


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"dns53-{request.param[:3]}")
    try:
        basic = basic_lab(lab)
        upstream = dns_server(lab, basic.outside, "192.0.2.53")
        d = lab.boxnetd(basic.host, "--firewall-backend", request.param,
                        config={"dns": ["203.0.113.1"]})  # fmt: skip
        yield Env(basic, d, upstream)
    finally:
        lab.close()


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return data[0] if isinstance(data, list) else data


def ip_on(d: Daemon, name: str, network: str) -> str:
    return str(inspect(d, name)["NetworkSettings"]["Networks"][network]["IPAddress"])


def answered(output: str) -> list[str]:
    """The addresses busybox nslookup printed after "Name:" (the server's own is skipped)."""
    lines = output.split("Name:", 1)[1].splitlines() if "Name:" in output else []
    return [x.split()[-1] for x in lines if x.startswith("Address")]


def in_netns(d: Daemon, container: str) -> list[str]:
    """The argv prefix that runs the lab's python in the container's network namespace."""
    netns = inspect(d, container)["NetworkSettings"]["SandboxKey"]
    return ["nsenter", f"--net={netns}", "--", sys.executable]


# Holds a UDP port on 127.0.0.11 in a namespace, as anything in the container could.
SQUAT = (
    "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "s.bind(('127.0.0.11', %d)); print('bound', flush=True); time.sleep(120)"
)

SERVER_ANSWER = "192.0.2.42"
# A DNS server run by the container itself: 0.0.0.0:53 and [::]:53, UDP and TCP; every A query
# answered with SERVER_ANSWER. Stdlib only: it runs on the host image's system python3 -I.
SERVER = r"""
import selectors, socket, struct
ANSWER = socket.inet_aton("ANSWER_IP")
def reply(q):
    pos = 12
    while q[pos]:
        pos += 1 + q[pos]
    n = 1 if struct.unpack("!H", q[pos + 1:pos + 3])[0] == 1 else 0
    r = q[:2] + struct.pack("!HHHHH", 0x8180, 1, n, 0, 0) + q[12:pos + 5]
    return r + (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ANSWER if n else b"")
sel = selectors.DefaultSelector()
for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(family, kind)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((address, 53))
        if kind == socket.SOCK_STREAM:
            s.listen(8)
        sel.register(s, selectors.EVENT_READ, kind)
print("listening on 0.0.0.0:53 and [::]:53", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if key.data == socket.SOCK_DGRAM:
            q, peer = s.recvfrom(4096)
            s.sendto(reply(q), peer)
            continue
        c, _ = s.accept()
        c.settimeout(5)
        with c:
            try:
                q = c.recv(4096)
                while len(q) < 2 + struct.unpack("!H", q[:2])[0]:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    q += chunk
                r = reply(q[2:])
                c.sendall(struct.pack("!H", len(r)) + r)
            except (OSError, struct.error, IndexError):
                pass
""".replace("ANSWER_IP", SERVER_ANSWER)


def listening(d: Daemon, container: str, exec: bool = True) -> list[tuple[str, str, int]]:
    """(proto, address, port) of every listening socket in the container, as `ss` sees them run
    inside it (a host image container), or else run in its network namespace by nsenter."""
    if exec:
        out = d.cli("exec", container, "ss", "-Hlntu").stdout
    else:
        netns = inspect(d, container)["NetworkSettings"]["SandboxKey"]
        out = subprocess.run(["nsenter", f"--net={netns}", "--", "ss", "-Hlntu"], check=True,
                             capture_output=True, text=True, timeout=20).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        fields = line.split()
        address, _, port = fields[4].rpartition(":")
        found.append((fields[0], address.strip("[]"), int(port)))
    return found


def resolver_ports(d: Daemon, container: str) -> dict[str, int]:
    """The resolver's ports in the container ({"udp": .., "tcp": ..}), seen by ss."""
    return {proto: port for proto, address, port in listening(d, container, exec=False)
            if address == "127.0.0.11"}  # fmt: skip


def redirect_ports(d: Daemon, container: str) -> dict[str, int]:
    """Where the container's `ip boxnet-dns` table sends 127.0.0.11:53, per protocol (nft -j);
    also checks the table holds exactly one DNAT and one SNAT rule per protocol, SNAT matching
    the DNAT's port (a stale rule from a previous daemon would shadow the new one)."""
    netns = inspect(d, container)["NetworkSettings"]["SandboxKey"]
    out = subprocess.run(
        ["nsenter", f"--net={netns}", "--", "nft", "-j", "list", "table", "ip", "boxnet-dns"],
        check=True, capture_output=True, text=True, timeout=20,
    ).stdout  # fmt: skip
    rules: dict[str, list[tuple[str, int]]] = {"output": [], "postrouting": []}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        matches = {(e["match"]["left"]["payload"]["protocol"], e["match"]["left"]["payload"]
                    ["field"]): e["match"]["right"] for e in rule["expr"] if "match" in e
                   and "payload" in e["match"]["left"]}  # fmt: skip
        if rule["chain"] == "output":
            (proto,) = [p for p, field in matches if field == "dport"]
            assert matches[(proto, "dport")] == 53, rule
            rules["output"] += [(proto, e["dnat"]["port"]) for e in rule["expr"] if "dnat" in e]
        else:
            (proto,) = [p for p, field in matches if field == "sport"]
            assert [e["snat"]["port"] for e in rule["expr"] if "snat" in e] == [53], rule
            rules["postrouting"].append((proto, matches[(proto, "sport")]))
    assert sorted(rules["output"]) == sorted(rules["postrouting"]), rules
    assert sorted(p for p, _ in rules["output"]) == ["tcp", "udp"], rules
    return dict(rules["output"])


def wait_for_server(d: Daemon, container: str) -> list[tuple[str, str, int]]:
    """Until the container's server listens on port 53 (bounded); what listens then."""
    for _ in range(100):
        if not inspect(d, container)["State"]["Running"]:
            pytest.fail(f"{container} exited: {d.cli('logs', container, check=False).stdout}")
        found = listening(d, container)
        if sum(1 for _proto, _address, port in found if port == 53) == 4:
            return found
        time.sleep(0.1)
    pytest.fail(f"{container}'s server never listened: {d.cli('logs', container).stdout}")


def exec_python(d: Daemon, container: str) -> list[str]:
    """The argv prefix that runs the system python3 inside a (host image) container."""
    return [str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}", "exec", container, "python3"]


# Networks of every kind a container can have a resolver on: (name, `network create` args).
NETWORKS = {
    "bridge": [],  # the default bridge, made by the daemon
    "dnsnet": ["network", "create", "dnsnet"],
    "dnsmac": ["network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet",
               "203.0.113.0/24", "--gateway", "203.0.113.1", "--ip-range", "203.0.113.64/28",
               "dnsmac"],
}  # fmt: skip


@pytest.mark.parametrize("network", list(NETWORKS))
def test_a_container_serves_dns_on_its_own_port_53(env: Env, network: str) -> None:
    d, host, outside = env.d, env.basic.host, env.basic.outside
    if NETWORKS[network]:
        d.cli(*NETWORKS[network])
    publish = [] if network == "dnsmac" else ["-p", "5353:53/udp", "-p", "53:53/tcp"]
    d.cli("run", "-d", "--name", "peer", "--network", network, "host", "sleep", "1000")
    d.cli("run", "-d", "--name", "dnsbox", "--network", network, *publish,
          "host", "python3", "-I", "-c", SERVER)  # fmt: skip
    try:
        found = wait_for_server(d, "dnsbox")
        for address in ("0.0.0.0", "::"):
            assert {("udp", address, 53), ("tcp", address, 53)} <= set(found), found
        box_ip = ip_on(d, "dnsbox", network)
        peer_ip = ip_on(d, "peer", network)
        mine = (0, [SERVER_ANSWER])
        out_python = outside.argv([sys.executable])
        host_python = host.argv([sys.executable])
        if publish:
            # From outside and from the host's loopback, through the published ports.
            assert query(out_python, "203.0.113.2", 5353, "udp", "a.test") == mine
            assert query(out_python, "203.0.113.2", 53, "tcp", "b.test") == mine
            assert query(host_python, "127.0.0.1", 5353, "udp", "c.test") == mine
            assert query(host_python, "127.0.0.1", 53, "tcp", "d.test") == mine
        for proto in ("udp", "tcp"):
            if publish:  # the host reaches its bridges' containers (not macvlan children)
                assert query(host_python, box_ip, 53, proto, "e.test") == mine
            else:  # a macvlan child is on the outside's own segment
                assert query(out_python, box_ip, 53, proto, "e.test") == mine
            # From another container on the network.
            assert query(exec_python(d, "peer"), box_ip, 53, proto, "f.test") == mine
            # Inside the server's own container: its server on every address but 127.0.0.11,
            # and the embedded resolver on 127.0.0.11:53, which knows the peer.
            box_python = exec_python(d, "dnsbox")
            assert query(box_python, "::1", 53, proto, "g.test") == mine
            assert query(box_python, "127.0.0.1", 53, proto, "h.test") == mine
            assert query(box_python, "127.0.0.11", 53, proto, "peer") == (0, [peer_ip])
        # What libc does in there (busybox nslookup reads /etc/resolv.conf: 127.0.0.11).
        out = d.cli("exec", "dnsbox", "busybox", "nslookup", "peer").stdout
        assert answered(out) == [peer_ip], out
        # --net container:dnsbox shares the namespace, so the same redirect and resolver.
        r = d.cli("run", "--rm", "--net", "container:dnsbox", "busybox", "nslookup", "peer")
        assert answered(r.stdout) == [peer_ip], r.stdout
        assert not any(q.startswith("peer ") for q in env.upstream.queries())
    finally:
        d.cli("rm", "-f", "dnsbox", "peer", check=False)


def test_no_well_known_port_of_a_fresh_container_is_taken(env: Env) -> None:
    d = env.d
    d.cli("run", "-d", "--name", "fresh", "host", "sleep", "1000")
    try:
        found = listening(d, "fresh")
        assert [x for x in found if x[2] < 1024] == [], found
        # What does listen there is the resolver, on 127.0.0.11, and the redirect leads to it.
        ports = resolver_ports(d, "fresh")
        assert sorted(ports) == ["tcp", "udp"] and len(found) == 2, found
        assert redirect_ports(d, "fresh") == ports
        fresh_ip = ip_on(d, "fresh", "bridge")
        for proto in ("udp", "tcp"):
            assert query(in_netns(d, "fresh"), "127.0.0.11", 53, proto, "fresh") == (0, [fresh_ip])
    finally:
        d.cli("rm", "-f", "fresh", check=False)


def test_the_redirect_follows_the_resolver_across_restarts_and_reconnects(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "later")
    d.cli("run", "-d", "--name", "kept", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "kept2", "busybox", "sleep", "1000")

    def resolves_kept2() -> None:
        kept2_ip = ip_on(d, "kept2", "bridge")
        for proto in ("udp", "tcp"):
            assert query(in_netns(d, "kept"), "127.0.0.11", 53, proto, "kept2") == (0, [kept2_ip])

    try:
        before = resolver_ports(d, "kept")
        assert redirect_ports(d, "kept") == before
        # A reconnect keeps the namespace: the same sockets, the same table.
        d.cli("network", "connect", "later", "kept")
        d.cli("network", "disconnect", "later", "kept")
        d.cli("network", "connect", "later", "kept")
        assert resolver_ports(d, "kept") == before and redirect_ports(d, "kept") == before
        resolves_kept2()
        # A daemon restart: the ports are remembered and bound again; the table is left alone.
        d.restart()
        assert resolver_ports(d, "kept") == before and redirect_ports(d, "kept") == before
        resolves_kept2()
        # A remembered port taken meanwhile: new ports, and the one table re-pointed at them.
        netns = inspect(d, "kept")["NetworkSettings"]["SandboxKey"]
        d.stop()
        squat = SQUAT % before["udp"]
        squatter = subprocess.Popen(
            ["nsenter", f"--net={netns}", "--", sys.executable, "-c", squat],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert squatter.stdout is not None and squatter.stdout.readline() == "bound\n"
            d.start()
        finally:
            squatter.kill()
            squatter.wait()
        after = resolver_ports(d, "kept")
        assert after["udp"] != before["udp"] and redirect_ports(d, "kept") == after
        resolves_kept2()
        # A container restart: a new namespace, its own sockets and table.
        d.cli("restart", "-t", "0", "kept")
        again = resolver_ports(d, "kept")
        assert sorted(again) == ["tcp", "udp"] and redirect_ports(d, "kept") == again
        resolves_kept2()
    finally:
        d.cli("rm", "-f", "kept", "kept2", check=False)
        d.cli("network", "rm", "later", check=False)
