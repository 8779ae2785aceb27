"""The bad-input catalogue (issue 8 §6): CLI, HTTP API and daemon.json. Every case gets a clear
message and a non-zero exit or a 4xx status, and the kernel state and the records are identical
before and after (independent snapshot: ip -j, nft -j, ps -a, network ls)."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, venv_bin

pytestmark = pytest.mark.e2e

CLI_CASES: list[tuple[str, ...]] = [
    # publish specs
    ("run", "-d", "-p", "70000:80", "busybox", "true"),
    ("run", "-d", "-p", "0:80", "busybox", "true"),
    ("run", "-d", "-p", "80:", "busybox", "true"),
    ("run", "-d", "-p", "abc", "busybox", "true"),
    ("run", "-d", "-p", "1.2.3.4:80", "busybox", "true"),
    ("run", "-d", "-p", "9002-9000:80", "busybox", "true"),
    ("run", "-d", "-p", "9000-9001:80-82", "busybox", "true"),
    ("run", "-d", "-p", "80/icmp", "busybox", "true"),
    ("run", "-d", "-p", "300.1.1.1:80:80", "busybox", "true"),
    ("run", "-d", "-p", "[::1:80:80", "busybox", "true"),
    ("run", "-d", "-p", "", "busybox", "true"),
    ("run", "-d", "-p", "80:80:80:80", "busybox", "true"),
    ("run", "-d", "-p", "-1:80", "busybox", "true"),
    ("run", "-d", "-p", "80:65536", "busybox", "true"),
    ("run", "-d", "-p", "192.0.2.99:80:80", "busybox", "true"),
    ("run", "-d", "--expose", "abc", "busybox", "true"),
    ("run", "-d", "--expose", "99999", "busybox", "true"),
    # names, modes, addresses
    ("run", "-d", "--name", "bad name", "busybox", "true"),
    ("run", "-d", "--name", "x", "busybox", "true"),
    ("run", "-d", "--name", "-leading", "busybox", "true"),
    ("run", "-d", "--name", "a;rm -rf /", "busybox", "true"),
    ("run", "-d", "--name", "$(reboot)", "busybox", "true"),
    ("run", "-d", "--name", "n" * 300, "busybox", "true"),
    ("run", "-d", "--net", "nosuchnet", "busybox", "true"),
    ("run", "-d", "--net", "container:", "busybox", "true"),
    ("run", "-d", "--net", "container:ghost", "busybox", "true"),
    ("run", "-d", "--net", "container:ghost", "-p", "80:80", "busybox", "true"),
    ("run", "-d", "--net", "host", "-p", "80:80", "busybox", "true"),
    ("run", "-d", "--net", "none", "-p", "80:80", "busybox", "true"),
    ("run", "-d", "--ip", "172.17.0.50", "busybox", "true"),
    ("run", "-d", "--ip", "not-an-ip", "busybox", "true"),
    ("run", "-d", "--mac-address", "zz:zz:zz:zz:zz:zz", "busybox", "true"),
    ("run", "-d", "--mac-address", "02:42", "busybox", "true"),
    ("run", "-d", "-h", "bad_host!", "busybox", "true"),
    ("run", "-d", "-h", "h" * 80, "busybox", "true"),
    ("run", "-d", "--network-alias", "bad alias", "busybox", "true"),
    # dns and hosts
    ("run", "-d", "--dns", "1.2.3", "busybox", "true"),
    ("run", "-d", "--dns", "example.com", "busybox", "true"),
    ("run", "-d", "--dns", "1.2.3.4:53", "busybox", "true"),
    ("run", "-d", "--dns-option", "ndots:99", "busybox", "true"),
    ("run", "-d", "--dns-option", "bogus", "busybox", "true"),
    ("run", "-d", "--dns-search", "bad..domain", "busybox", "true"),
    ("run", "-d", "--add-host", "nocolon", "busybox", "true"),
    ("run", "-d", "--add-host", "h:1.2.3.999", "busybox", "true"),
    ("run", "-d", "--add-host", ":1.2.3.4", "busybox", "true"),
    ("run", "-d", "--add-host", "bad host:1.2.3.4", "busybox", "true"),
    # images and commands
    ("run", "-d", "nosuchimage", "true"),
    ("run", "-d", "../../etc", "true"),
    ("run", "--rm", "busybox", "no-such-command"),
    ("run", "--rm", "busybox", "/etc/passwd"),
    ("create", "nosuchimage"),
    ("import", "/nonexistent.tar", "img"),
    ("import", "/etc/passwd", "Bad Name"),
    # container verbs on unknown containers
    ("start", "ghost"),
    ("stop", "ghost"),
    ("restart", "ghost"),
    ("kill", "ghost"),
    ("rm", "ghost"),
    ("logs", "ghost"),
    ("wait", "ghost"),
    ("port", "ghost"),
    ("inspect", "ghost"),
    ("exec", "ghost", "true"),
    ("kill", "-s", "SIGNOPE", "ghost"),
    # networks
    ("network", "create", "bridge"),
    ("network", "create", "host"),
    ("network", "create", "--subnet", "10.0.0.0/33", "n1"),
    ("network", "create", "--subnet", "10.0.0.1/24", "n1"),
    ("network", "create", "--subnet", "banana", "n1"),
    ("network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.8.0.1", "n1"),
    ("network", "create", "--subnet", "10.9.0.0/24", "--ip-range", "10.8.0.0/28", "n1"),
    ("network", "create", "--gateway", "10.8.0.1", "n1"),
    ("network", "create", "--subnet", "203.0.113.0/25", "n1"),
    ("network", "create", "-d", "nosuchdriver", "n1"),
    ("network", "create", "-o", "com.docker.network.driver.mtu=10", "n1"),
    ("network", "create", "-o", "com.docker.network.bridge.enable_icc=maybe", "n1"),
    ("network", "create", "-o", "unknown.option=1", "n1"),
    ("network", "create", "-o", "com.docker.network.bridge.name=way-too-long-bridge-name", "n1"),
    ("network", "create", "-o", "com.docker.network.bridge.name=bad/name", "n1"),
    ("network", "create", "bad/name"),
    ("network", "create", " padded "),
    ("network", "rm", "bridge"),
    ("network", "rm", "ghostnet"),
    ("network", "inspect", "ghostnet"),
    ("network", "connect", "ghostnet", "ghost"),
    ("network", "disconnect", "ghostnet", "ghost"),
]

API_CASES: list[tuple[str, str, bytes]] = [
    ("POST", "/containers/create", b"{not json"),
    ("POST", "/containers/create", b"[]"),
    ("POST", "/containers/create", b'"a string"'),
    ("POST", "/containers/create", b"{}"),
    ("POST", "/containers/create", b'{"Image": 5}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "Cmd": "not-a-list-but-ok", "Env": 3}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "Tty": "yes"}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "HostConfig": []}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "HostConfig": {"NetworkMode": 7}}'),
    (
        "POST",
        "/containers/create",
        b'{"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}}',
    ),
    (
        "POST",
        "/containers/create",
        b'{"Image": "busybox", "HostConfig": {"PortBindings": {"99999/tcp": []}}}',
    ),
    (
        "POST",
        "/containers/create",
        b'{"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": "nope"}}}',
    ),
    ("POST", "/containers/create", b'{"Image": "busybox", "HostConfig": {"Dns": ["x.y"]}}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "HostConfig": {"ExtraHosts": ["a"]}}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "MacAddress": "nope"}'),
    ("POST", "/containers/create?name=a%20b", b'{"Image": "busybox"}'),
    ("POST", "/containers/create?name=%2E%2E", b'{"Image": "busybox"}'),
    ("POST", "/containers/create", b'{"Image": "busybox", "Env": ["=novalue"]}'),
    (
        "POST",
        "/containers/create",
        b'{"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"x": "no"}}}',
    ),
    ("POST", "/containers/create", b'{"Image": "' + b"a" * 5000 + b'"}'),
    ("POST", "/containers/ghost/start", b""),
    ("POST", "/containers/ghost/stop", b""),
    ("POST", "/containers/ghost/kill?signal=NOPE", b""),
    ("DELETE", "/containers/ghost", b""),
    ("GET", "/containers/ghost/json", b""),
    ("POST", "/containers/ghost/exec", b'{"Cmd": ["true"]}'),
    ("POST", "/networks/create", b"{bad"),
    ("POST", "/networks/create", b"{}"),
    ("POST", "/networks/create", b'{"Name": 1}'),
    ("POST", "/networks/create", b'{"Name": "n2", "IPAM": {"Config": [{"Subnet": "1.2.3.4/99"}]}}'),
    ("POST", "/networks/create", b'{"Name": "n2", "IPAM": {"Config": [{"Gateway": "1.2.3.4"}]}}'),
    ("POST", "/networks/create", b'{"Name": "n2", "Options": []}'),
    ("POST", "/networks/create", b'{"Name": "n2", "Driver": "overlay"}'),
    ("POST", "/networks/create", b'{"Name": "a/\\"; drop table;"}'),
    ("DELETE", "/networks/ghost", b""),
    ("GET", "/networks/ghost", b""),
    ("GET", "/no/such/path", b""),
    ("PUT", "/containers/create", b"{}"),
]

DAEMON_JSON_CASES: list[str] = [
    "{'bip': \"10.1.0.1/24\"}",
    '{"bip": "10.1.0.1/24" "mtu": 1500}',
    '{"bip": "10.1.0.0/24"}',
    '{"bip": "10.1.0.1/33"}',
    '{"final-cidr": "10.1.0.0/24"}',
    '{"bip": "10.1.0.1/24", "fixed-cidr": "10.2.0.0/24"}',
    '{"bip": "10.1.0.1/24", "default-gateway": "10.9.9.9"}',
    '{"bridge": "br0", "bip": "10.1.0.1/24"}',
    '{"mtu": 10}',
    '{"dns": "1.1.1.1"}',
    '{"dns": ["not-an-ip"]}',
    '{"firewall-backend": "pf"}',
    '{"default-address-pools": [{"base": "10.0.0.0/8", "size": 4}]}',
    '{"icc": "no"}',
    "",
    "[1, 2]",
]


def http(sock_path: Path, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(sock_path))
        head = f"{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)
        data = b""
        for _ in range(10_000):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon]]:
    lab = Lab("badinput")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        d.cli("run", "-d", "--name", "resident", "-p", "8080:80", "busybox", "sleep", "1000")
        yield basic, d
    finally:
        lab.close()


def snapshot(basic: BasicLab, d: Daemon) -> dict[str, Any]:
    h = basic.host
    return {
        "links": sorted((x["ifname"], x.get("master", "")) for x in h.ip_json("link")),
        "addrs": sorted(
            (x["ifname"], a["family"], a["local"], a["prefixlen"])
            for x in h.ip_json("addr")
            for a in x["addr_info"]
        ),
        "routes": h.run(["ip", "-j", "route"]).stdout,
        "nft": h.run(["nft", "list", "ruleset"]).stdout,
        "ps": d.cli("ps", "-a", "--no-trunc", "-q").stdout,
        "networks": d.cli("network", "ls", "-q", "--no-trunc").stdout,
        "netns": sorted(p.name for p in (d.exec_root / "netns").glob("*")),
    }


def test_catalogue_has_over_a_hundred_cases() -> None:
    assert len(CLI_CASES) + len(API_CASES) + len(DAEMON_JSON_CASES) >= 100


@pytest.mark.parametrize("args", CLI_CASES, ids=lambda a: " ".join(a)[:60])
def test_cli_bad_input(env: tuple[BasicLab, Daemon], args: tuple[str, ...]) -> None:
    basic, d = env
    before = snapshot(basic, d)
    res = d.cli(*args, check=False)
    assert res.returncode != 0, res.stdout
    assert res.stderr.startswith("Error:") or "Error:" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(basic, d) == before


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: f"{c[0]} {c[1]} {c[2][:30]!r}")
def test_api_bad_input(env: tuple[BasicLab, Daemon], case: tuple[str, str, bytes]) -> None:
    basic, d = env
    before = snapshot(basic, d)
    status, body = http(d.socket, *case)
    assert 400 <= status < 500, (status, body)
    assert json.loads(body)["message"]
    assert snapshot(basic, d) == before


@pytest.mark.parametrize("text", DAEMON_JSON_CASES)
def test_daemon_json_bad_input(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "daemon.json"
    cfg.write_text(text)
    res = subprocess.run(
        [
            str(venv_bin() / "boxnetd"),
            "--validate",
            "--config-file",
            str(cfg),
            "--data-root",
            str(tmp_path / "d"),
            "--exec-root",
            str(tmp_path / "e"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1, res.stdout
    assert str(cfg) in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()
