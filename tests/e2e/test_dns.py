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
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.dns_query import query
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


def in_container_netns(d: Daemon, container: str) -> list[str]:
    netns = inspect(d, container)["NetworkSettings"]["SandboxKey"]
    return ["nsenter", f"--net={netns}", "--", sys.executable]


def raw_query(
    d: Daemon, container: str, name: str, qtype: int = 1, proto: str = "udp"
) -> tuple[int, list[str]]:
    """(rcode, A addresses) of a query to 127.0.0.11:53 sent from inside the container's netns."""
    return query(in_container_netns(d, container), "127.0.0.11", 53, proto, name, qtype)


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
    assert query(host_python, "127.0.0.1", 53, "udp", "anything.test") == (0, [HOST_ANSWER])
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
    d.restart()
    assert raw_query(d, "k2", "kv") == (0, [k1])
    assert raw_query(d, "k2", "kv", proto="tcp") == (0, [k1])
    code, out = nslookup(d, "k2", "k1")
    assert code == 0 and answered(out) == [k1]
    assert raw_query(d, "k2", "forwarded.after.restart")[1] == [OUTSIDE_ANSWER]
