"""Issue 5 end to end: the embedded resolver and the containers' /etc files.

One lab for the module: "host" runs boxnetd (daemon dns = 203.0.113.1) AND, before it, a DNS
server of its own on 0.0.0.0:53 (the port-53 clash case); "outside" (203.0.113.1) and "client2"
(198.51.100.2) run logging upstream servers with different canned answers. Checks use busybox
nslookup/ping in containers and raw DNS packets built by hand and sent from inside a
container's namespace (nsenter), plus the upstreams' query logs.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.daemon import venv_bin
from boxnet.lab.dns_upstream import Upstream, dns_server

pytestmark = pytest.mark.e2e

OUTSIDE_ANSWER = "192.0.2.53"
CLIENT2_ANSWER = "192.0.2.77"
HOST_ANSWER = "192.0.2.99"


@dataclass
class Env:
    basic: BasicLab
    d: Daemon
    upstream: Upstream  # outside, the daemon's dns
    other: Upstream  # client2, for --dns
    on_host: Upstream  # the host's own server on :53


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    backend = ["--firewall-backend", request.param]  # the same suite under both backends
    lab = Lab(f"dns-{request.param[:3]}")
    try:
        basic = basic_lab(lab)
        on_host = dns_server(lab, basic.host, HOST_ANSWER)  # first: it owns the host's :53
        upstream = dns_server(lab, basic.outside, OUTSIDE_ANSWER)
        other = dns_server(lab, basic.client2, CLIENT2_ANSWER)
        d = lab.boxnetd(basic.host, *backend, config={"dns": ["203.0.113.1"]})
        yield Env(basic, d, upstream, other, on_host)
    finally:
        lab.close()


# -- helpers ------------------------------------------------------------------------------------
def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return data[0] if isinstance(data, list) else data


def ip_on(d: Daemon, name: str, network: str) -> str:
    return str(inspect(d, name)["NetworkSettings"]["Networks"][network]["IPAddress"])


def nslookup(d: Daemon, container: str, name: str) -> tuple[int, str]:
    r = d.cli("exec", container, "nslookup", name, check=False)
    return r.returncode, r.stdout + r.stderr


def answered(output: str) -> list[str]:
    """The addresses busybox nslookup printed after "Name:" (the server's own is skipped)."""
    lines = output.split("Name:", 1)[1].splitlines() if "Name:" in output else []
    return [x.split()[-1] for x in lines if x.startswith("Address")]


CLIENT = r"""
import socket, struct, sys
server, port, proto, name, qtype = sys.argv[1:6]
port, qtype = int(port), int(qtype)
q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
q += struct.pack("!HH", qtype, 1)
family = socket.AF_INET6 if ":" in server else socket.AF_INET
if proto == "udp":  # connected, as libc resolvers do: a reply from another port is dropped
    s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(5)
    s.connect((server, port)); s.send(q); r = s.recv(4096)
else:
    s = socket.create_connection((server, port), timeout=5)
    s.sendall(struct.pack("!H", len(q)) + q)
    r = b""
    while len(r) < 2 or len(r) < 2 + struct.unpack("!H", r[:2])[0]:
        chunk = s.recv(4096)
        if not chunk:
            break
        r += chunk
    r = r[2:]
print(r.hex())
"""


def query_with(prefix: list[str], server: str, port: int, proto: str, name: str,
               qtype: int = 1) -> tuple[int, list[str]]:  # fmt: skip
    """(rcode, A addresses) of a hand-built query to server:port/proto, sent by the python
    that `prefix` runs (an nsenter into some namespace, or `boxnet exec C python3`)."""
    argv = [*prefix, "-I", "-c", CLIENT, server, str(port), proto, name, str(qtype)]
    r = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"query {name} to {server}:{port}/{proto} failed: {r.stderr}"
    return parse_reply(bytes.fromhex(r.stdout.strip()))


def in_container_netns(d: Daemon, container: str) -> list[str]:
    netns = inspect(d, container)["NetworkSettings"]["SandboxKey"]
    return ["nsenter", f"--net={netns}", "--", sys.executable]


def raw_query(
    d: Daemon, container: str, name: str, qtype: int = 1, proto: str = "udp"
) -> tuple[int, list[str]]:
    """(rcode, A addresses) of a query to 127.0.0.11:53 sent from inside the container's netns."""
    return query_with(in_container_netns(d, container), "127.0.0.11", 53, proto, name, qtype)


def parse_reply(data: bytes) -> tuple[int, list[str]]:
    assert data[:2] == b"\x42\x42" and data[2] & 0x80, "not a response to our query"
    rcode = data[3] & 0x0F
    ancount = struct.unpack("!H", data[6:8])[0]
    pos = 12
    while data[pos]:
        pos += 1 + data[pos]
    pos += 5
    addresses = []
    for _ in range(ancount):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[pos : pos + rdlen]))
        pos += rdlen
    return rcode, addresses


def _skip_name(data: bytes, pos: int) -> int:
    start = pos
    while data[pos] and data[pos] & 0xC0 != 0xC0:
        pos += 1 + data[pos]
    return pos - start + (2 if data[pos] else 1)


# -- names ----------------------------------------------------------------------------------------
def test_names_and_aliases_on_a_user_network(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "app")
    d.cli("run", "-d", "--name", "db", "--network", "app", "--network-alias", "postgres",
          "busybox", "sleep", "1000")  # fmt: skip
    d.cli("run", "-d", "--name", "web", "--network", "app", "busybox", "sleep", "1000")
    db_ip = ip_on(d, "db", "app")
    short = inspect(d, "db")["Id"][:12]
    for name in ("db", "postgres", short, "DB"):
        code, out = nslookup(d, "web", name)
        assert code == 0 and answered(out) == [db_ip], (name, out)
        assert raw_query(d, "web", name) == (0, [db_ip])
    ping = d.cli("run", "--rm", "--network", "app", "busybox", "ping", "-c1", "-W2", "db")
    assert "1 packets received" in ping.stdout
    # PTR: the address maps back to the container's name.
    code, out = nslookup(d, "web", db_ip)
    assert code == 0 and "db" in out, out
    # AAAA of a container name: no records, and nothing asked outside.
    assert raw_query(d, "web", "db", qtype=28) == (0, [])
    assert not any(q.startswith("db ") for q in env.upstream.queries())


def test_names_on_the_default_bridge(env: Env) -> None:
    d = env.d
    d.cli("run", "-d", "--name", "aa", "busybox", "sleep", "1000")
    a_ip = inspect(d, "aa")["NetworkSettings"]["IPAddress"]
    r = d.cli("run", "--rm", "busybox", "ping", "-c1", "-W2", "aa")
    assert f"PING aa ({a_ip})" in r.stdout and "1 packets received" in r.stdout


def test_names_are_isolated_between_networks(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "lamp")
    d.cli("network", "create", "lnmp")
    d.cli("run", "-d", "--name", "onlylnmp", "--network", "lnmp", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "onlylamp", "--network", "lamp", "busybox", "sleep", "1000")
    hidden = ip_on(d, "onlylnmp", "lnmp")
    before = len(env.upstream.queries())
    rcode, addresses = raw_query(d, "onlylamp", "onlylnmp")
    # Not a local name for lamp: the query went upstream, and the lnmp address never leaked.
    assert hidden not in addresses and addresses == [OUTSIDE_ANSWER], (rcode, addresses)
    assert any(q.startswith("onlylnmp 1 ") for q in env.upstream.queries()[before:])
    # Connecting lamp's container to lnmp makes the name visible at once.
    d.cli("network", "connect", "lnmp", "onlylamp")
    assert raw_query(d, "onlylamp", "onlylnmp") == (0, [hidden])
    d.cli("network", "disconnect", "lnmp", "onlylamp")
    assert raw_query(d, "onlylamp", "onlylnmp")[1] == [OUTSIDE_ANSWER]


# -- forwarding -----------------------------------------------------------------------------------
def test_other_names_are_forwarded_to_the_upstreams(env: Env) -> None:
    d = env.d
    r = d.cli("run", "--rm", "busybox", "nslookup", "www.example.test", check=False)
    assert r.returncode == 0 and OUTSIDE_ANSWER in answered(r.stdout), r.stdout + r.stderr
    # The daemon's namespace forwards: the upstream sees the host's address.
    assert "www.example.test 1 203.0.113.2" in env.upstream.queries()
    # Per-container --dns goes first.
    r = d.cli("run", "--rm", "--dns", "198.51.100.2", "busybox", "nslookup", "other.test")
    assert CLIENT2_ANSWER in answered(r.stdout), r.stdout
    assert any(q.startswith("other.test 1 ") for q in env.other.queries())
    assert not any(q.startswith("other.test ") for q in env.upstream.queries())


def test_internal_networks_never_forward(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "--internal", "vault")
    d.cli("run", "-d", "--name", "safe", "--network", "vault", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "safe2", "--network", "vault", "busybox", "sleep", "1000")
    before_up, before_other = len(env.upstream.queries()), len(env.other.queries())
    # Container names still resolve on the internal network...
    assert raw_query(d, "safe", "safe2") == (0, [ip_on(d, "safe2", "vault")])
    # ...but nothing else, over UDP (raw and nslookup) and TCP.
    rcode, addresses = raw_query(d, "safe", "leak.example.test")
    assert addresses == [] and rcode == 5  # REFUSED
    code, out = nslookup(d, "safe", "leak2.example.test")
    assert code != 0, out
    d.cli("exec", "safe", "nslookup", "-type=a", "leak3.example.test", "127.0.0.11", check=False)
    assert env.upstream.queries()[before_up:] == []
    assert env.other.queries()[before_other:] == []
    # Control: the same kind of query from a normal container does reach the upstream.
    d.cli("run", "--rm", "busybox", "nslookup", "reach.example.test", check=False)
    assert any(q.startswith("reach.example.test 1 ") for q in env.upstream.queries())


def test_a_dns_server_on_the_hosts_port_53_does_not_clash(env: Env) -> None:
    host = env.basic.host
    # boxnetd holds no port 53 in its namespace: only the lab's own server listens there.
    udp = host.run(["ss", "-Hlunp", "sport = :53"]).stdout.strip().splitlines()
    tcp = host.run(["ss", "-Hltnp", "sport = :53"]).stdout.strip().splitlines()
    assert len(udp) == 1 and "python" in udp[0] and tcp == [], (udp, tcp)
    host_python = host.argv([sys.executable])
    assert query_with(host_python, "127.0.0.1", 53, "udp", "anything.test") == (0, [HOST_ANSWER])
    # ...while containers resolve names as usual (the other tests ran with it in place).
    env.d.cli("run", "-d", "--name", "p53", "busybox", "sleep", "1000")
    r = env.d.cli("run", "--rm", "busybox", "nslookup", "p53")
    assert answered(r.stdout) == [inspect(env.d, "p53")["NetworkSettings"]["IPAddress"]]
    assert not any(q.startswith("p53") for q in env.on_host.queries())


def test_loopback_upstreams_work_from_containers(env: Env) -> None:
    # Like systemd-resolved's 127.0.0.53: a server on the daemon's loopback, unreachable from
    # the container's own namespace, still serves it because the daemon forwards.
    r = env.d.cli("run", "--rm", "--dns", "127.0.0.1", "busybox", "nslookup", "loop.test")
    assert HOST_ANSWER in answered(r.stdout), r.stdout
    assert any(q.startswith("loop.test 1 127.0.0.1") for q in env.on_host.queries())


# -- the files ------------------------------------------------------------------------------------
def test_resolv_conf_from_dns_flags(env: Env) -> None:
    flags = ["--dns", "198.51.100.7", "--dns-search", "corp.test", "--dns-option", "ndots:2"]
    out = env.d.cli("run", "--rm", *flags, "busybox", "cat", "/etc/resolv.conf").stdout
    lines = out.splitlines()
    assert "nameserver 127.0.0.11" in lines and "search corp.test" in lines
    assert "options ndots:2" in lines and "# ExtServers: [198.51.100.7]" in lines
    assert [x for x in lines if x.startswith("nameserver")] == ["nameserver 127.0.0.11"]
    plain = env.d.cli("run", "--rm", "busybox", "cat", "/etc/resolv.conf").stdout.splitlines()
    assert "options ndots:0" in plain and "# ExtServers: [203.0.113.1]" in plain
    # host mode has no resolver of its own: the real servers.
    host = env.d.cli("run", "--rm", "--net", "host", "busybox", "cat", "/etc/resolv.conf")
    assert host.stdout.splitlines()[0] == "nameserver 203.0.113.1"


def test_hosts_file_with_add_host_and_host_gateway(env: Env) -> None:
    d = env.d
    d.cli("run", "-d", "--name", "hf", "--add-host", "foo:192.0.2.5", "--add-host",
          "gw:host-gateway", "busybox", "sleep", "1000")  # fmt: skip
    hosts = d.cli("exec", "hf", "cat", "/etc/hosts").stdout.splitlines()
    assert "127.0.0.1\tlocalhost" in hosts
    assert "192.0.2.5\tfoo" in hosts and "172.17.0.1\tgw" in hosts
    own = inspect(d, "hf")
    assert f"{own['NetworkSettings']['IPAddress']}\t{own['Id'][:12]} hf" in hosts
    assert d.cli("exec", "hf", "hostname").stdout.strip() == own["Id"][:12]
    # container: mode sees the same files.
    shared = d.cli("run", "--rm", "--net", "container:hf", "busybox", "cat", "/etc/hosts")
    assert shared.stdout.splitlines() == hosts
    # connect updates /etc/hosts of the running container.
    d.cli("network", "create", "extra")
    d.cli("network", "connect", "extra", "hf")
    extra_ip = ip_on(d, "hf", "extra")
    assert f"{extra_ip}\t{own['Id'][:12]} hf" in d.cli("exec", "hf", "cat", "/etc/hosts").stdout


# -- lifecycle ------------------------------------------------------------------------------------
def test_answers_follow_stop_and_rm(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "life")
    d.cli("run", "-d", "--name", "asker", "--network", "life", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "gone", "--network", "life", "busybox", "sleep", "1000")
    gone_ip = ip_on(d, "gone", "life")
    assert raw_query(d, "asker", "gone") == (0, [gone_ip])
    d.cli("stop", "-t", "0", "gone")
    assert raw_query(d, "asker", "gone")[1] == [OUTSIDE_ANSWER]  # no longer local
    d.cli("start", "gone")
    assert raw_query(d, "asker", "gone") == (0, [ip_on(d, "gone", "life")])
    d.cli("rm", "-f", "gone")
    assert raw_query(d, "asker", "gone")[1] == [OUTSIDE_ANSWER]


def test_bad_input_is_refused_and_creates_nothing(env: Env) -> None:
    d = env.d
    before = d.cli("ps", "-aq").stdout
    cases = [
        (["--dns", "1.2.3"], "invalid --dns"),
        (["--add-host", "nocolon"], "invalid add-host"),
        (["--add-host", "h:1.2.3.999"], "not an IP address"),
        (["--dns-option", "ndot:2"], "did you mean ndots"),
        (["--network", "bridge", "--network-alias", "bad_alias!"], "network alias"),
    ]
    for flags, message in cases:
        r = d.cli("run", "-d", *flags, "busybox", "true", check=False)
        assert r.returncode == 125 and message in r.stderr, (flags, r.stderr)
        assert "Traceback" not in r.stderr
    body = {"Image": "busybox", "HostConfig": {"ExtraHosts": ["nocolon"], "Dns": ["x"]}}
    status, reply = _api_post(d, "/containers/create", body)
    assert status == 400 and "invalid" in reply["message"]
    assert d.cli("ps", "-aq").stdout == before


def _api_post(d: Daemon, path: str, body: object) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(d.socket))
        conn.sendall(
            f"POST {path} HTTP/1.0\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n".encode()
            + raw
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_the_resolver_survives_a_daemon_restart(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "keep")
    d.cli("run", "-d", "--name", "k1", "--network", "keep", "--network-alias", "kv",
          "busybox", "sleep", "1000")  # fmt: skip
    d.cli("run", "-d", "--name", "k2", "--network", "keep", "busybox", "sleep", "1000")
    k1 = ip_on(d, "k1", "keep")
    assert raw_query(d, "k2", "kv") == (0, [k1])
    before = resolver_ports(d, "k2")
    d.restart()
    assert raw_query(d, "k2", "kv") == (0, [k1])
    assert raw_query(d, "k2", "kv", proto="tcp") == (0, [k1])
    # The new daemon's sockets have new ports, and the redirect follows them (one table).
    after = resolver_ports(d, "k2")
    assert after != before and redirect_ports(d, "k2") == after
    code, out = nslookup(d, "k2", "k1")
    assert code == 0 and answered(out) == [k1]
    assert raw_query(d, "k2", "forwarded.after.restart")[1] == [OUTSIDE_ANSWER]


# -- port 53 is the container's own (issue 13) -------------------------------------------------
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
    """Where the container's `ip boxnet-dns` table sends 127.0.0.11:53, per protocol (nft -j)."""
    netns = inspect(d, container)["NetworkSettings"]["SandboxKey"]
    out = subprocess.run(
        ["nsenter", f"--net={netns}", "--", "nft", "-j", "list", "table", "ip", "boxnet-dns"],
        check=True, capture_output=True, text=True, timeout=20,
    ).stdout  # fmt: skip
    ports = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if rule and rule["chain"] == "output":
            exprs = rule["expr"]
            proto = next(e["match"]["left"]["payload"]["protocol"] for e in exprs
                         if "match" in e and e["match"]["left"].get("payload", {}).get("field")
                         == "dport")  # fmt: skip
            ports[proto] = next(e["dnat"]["port"] for e in exprs if "dnat" in e)
    return ports


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


@pytest.mark.parametrize("network", ["bridge", "dnsnet"])
def test_a_container_serves_dns_on_its_own_port_53(env: Env, network: str) -> None:
    d, host, outside = env.d, env.basic.host, env.basic.outside
    if network != "bridge":
        d.cli("network", "create", network)
    d.cli("run", "-d", "--name", "peer", "--network", network, "host", "sleep", "1000")
    d.cli("run", "-d", "--name", "dnsbox", "--network", network, "-p", "5353:53/udp",
          "-p", "53:53/tcp", "host", "python3", "-I", "-c", SERVER)  # fmt: skip
    try:
        found = wait_for_server(d, "dnsbox")
        for address in ("0.0.0.0", "::"):
            assert {("udp", address, 53), ("tcp", address, 53)} <= set(found), found
        box_ip = ip_on(d, "dnsbox", network)
        peer_ip = ip_on(d, "peer", network)
        mine = (0, [SERVER_ANSWER])
        # From outside, through the published ports.
        out_python = outside.argv([sys.executable])
        assert query_with(out_python, "203.0.113.2", 5353, "udp", "a.test") == mine
        assert query_with(out_python, "203.0.113.2", 53, "tcp", "b.test") == mine
        # From the host: its loopback (published) and the container's address.
        host_python = host.argv([sys.executable])
        assert query_with(host_python, "127.0.0.1", 5353, "udp", "c.test") == mine
        assert query_with(host_python, "127.0.0.1", 53, "tcp", "d.test") == mine
        for proto in ("udp", "tcp"):
            assert query_with(host_python, box_ip, 53, proto, "e.test") == mine
            # From another container on the network.
            assert query_with(exec_python(d, "peer"), box_ip, 53, proto, "f.test") == mine
            # Inside the server's own container: its server on every address but 127.0.0.11,
            # and the embedded resolver on 127.0.0.11:53, which knows the peer.
            box_python = exec_python(d, "dnsbox")
            assert query_with(box_python, "::1", 53, proto, "g.test") == mine
            assert query_with(box_python, "127.0.0.1", 53, proto, "h.test") == mine
            assert query_with(box_python, "127.0.0.11", 53, proto, "peer") == (0, [peer_ip])
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
        assert raw_query(d, "fresh", "fresh") == (0, [ip_on(d, "fresh", "bridge")])
        assert raw_query(d, "fresh", "fresh", proto="tcp") == (0, [ip_on(d, "fresh", "bridge")])
    finally:
        d.cli("rm", "-f", "fresh", check=False)
