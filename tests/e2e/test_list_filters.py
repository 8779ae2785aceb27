"""Issue 17: filters on `ps`, `network ls` and the API lists (both JSON encodings), `ps -n/-l`,
and `ps --format json` as Docker prints it, against a mix of containers and networks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def d() -> Iterator[Daemon]:
    """web1 (project a, on front, -p 8080:80, running), web2 (project ab, exited 0), db (project
    a, exited 3), fresh (created), networks front (env=prod, in use) and back (unused)."""
    lab = Lab("filters")
    try:
        daemon = lab.boxnetd(basic_lab(lab).host)
        cli = daemon.cli
        cli("network", "create", "--label", "env=prod", "front")
        cli("network", "create", "back")
        cli("run", "-d", "--name", "web1", "--net", "front", "-p", "8080:80", "-l",
            "com.docker.compose.project=a", "busybox", "sleep", "1000")  # fmt: skip
        cli("run", "--name", "web2", "-l", "com.docker.compose.project=ab", "busybox", "true")
        cli("run", "--name", "db", "-l", "com.docker.compose.project=a", "-v", "/tmp:/scratch",
            "busybox", "sh", "-c", "exit 3", check=False)  # fmt: skip
        cli("create", "--name", "fresh", "--expose", "9000", "busybox")
        yield daemon
    finally:
        lab.close()


def names(d: Daemon, *args: str) -> list[str]:
    return d.cli("ps", "--format", "{{.Names}}", *args).stdout.split()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["web1"]),
        (("-a",), ["fresh", "db", "web2", "web1"]),
        (("-a", "--filter", "label=com.docker.compose.project=a"), ["db", "web1"]),
        (("-a", "-f", "label=com.docker.compose.project"), ["db", "web2", "web1"]),
        (("-f", "status=exited"), ["db", "web2"]),
        (("-f", "status=created", "-f", "status=running"), ["fresh", "web1"]),
        (("-f", "exited=3"), ["db"]),
        (("-a", "-f", "name=web"), ["web2", "web1"]),
        (("-a", "-f", "name=^web1$"), ["web1"]),
        (("-a", "-f", "network=front"), ["web1"]),
        (("-a", "-f", "network=bridge"), ["fresh", "db", "web2"]),
        (("-a", "-f", "publish=80"), ["web1"]),
        (("-a", "-f", "expose=9000/tcp"), ["fresh"]),
        (("-a", "-f", "volume=/scratch"), ["db"]),
        (("-f", "before=db"), ["web2", "web1"]),
        (("-f", "since=web2"), ["fresh", "db"]),
        (("-a", "-f", "ancestor=busybox", "-f", "label=com.docker.compose.project=ab"), ["web2"]),
        (("-n", "2"), ["fresh", "db"]),
        (("-l",), ["fresh"]),
        (("-n", "3", "-f", "status=exited"), ["db", "web2"]),
    ],
)
def test_ps_filters(d: Daemon, args: tuple[str, ...], expected: list[str]) -> None:
    assert names(d, *args) == expected


def test_id_filter_and_refusals(d: Daemon) -> None:
    web1 = json.loads(d.cli("inspect", "--format", "json", "web1").stdout)[0]["Id"]
    assert names(d, "-a", "-f", f"id={web1[:8]}") == ["web1"]
    assert names(d, "-a", "-f", "id=ffffffffdeadbeef") == []
    for flag, message in (
        ("colour=red", "invalid filter 'colour'"),
        ("status=sleeping", "invalid filter 'status=sleeping'"),
        ("publish=http", "invalid filter 'publish=http'"),
        ("before=nosuch", "No such container: nosuch"),
    ):
        bad = d.cli("ps", "-f", flag, check=False)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr


def test_ps_format_json_is_dockers(d: Daemon) -> None:
    lines = d.cli("ps", "--format", "json").stdout.splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["Names"] == "web1" and row["Ports"] == "0.0.0.0:8080->80/tcp"
    assert row["Labels"] == "com.docker.compose.project=a" and row["Networks"] == "front"
    assert row["State"] == "running" and row["Command"] == '"sleep 1000"'
    assert row["Status"].startswith("Up ") and row["CreatedAt"].endswith(" +0000 UTC")
    assert '"Names":"web1"' in lines[0]  # compact, as Go's encoder writes it


def test_network_ls_filters(d: Daemon) -> None:
    def nets(*flags: str) -> list[str]:
        return d.cli("network", "ls", "--format", "{{.Name}}", *flags).stdout.split()

    assert nets("-f", "label=env=prod") == ["front"]
    assert nets("-f", "type=custom") == ["back", "front"]
    assert nets("-f", "type=builtin") == ["bridge", "host", "none"]
    assert nets("-f", "dangling=true") == ["back"]
    assert nets("-f", "name=fro") == ["front"]
    assert nets("-f", "driver=null") == ["none"]
    assert nets("-f", "driver=bridge", "-f", "type=custom") == ["back", "front"]
    row = json.loads(d.cli("network", "ls", "--format", "json", "-f", "name=back").stdout)
    assert (row["Name"], row["Driver"], row["Scope"], row["Internal"]) == (
        "back", "bridge", "local", "false"
    )  # fmt: skip
    bad = d.cli("network", "ls", "-f", "type=odd", check=False)
    assert bad.returncode == 1 and "Invalid filter: 'type'='odd'" in bad.stderr


def test_docker_sdk_filters(d: Daemon) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{d.socket}")
    listed: list[Any] = client.containers.list(
        all=True, filters={"label": "com.docker.compose.project=a"}
    )
    assert sorted(c.name for c in listed) == ["db", "web1"]
    assert [c.name for c in client.containers.list(filters={"status": "exited", "exited": 0})] == [
        "web2"
    ]
    assert [n.name for n in client.networks.list(names=["back"])] == ["back"]
    assert [n.name for n in client.networks.list(filters={"label": "env=prod"})] == ["front"]
    assert client.networks.list(ids=["ffffffffdeadbeef"]) == []
