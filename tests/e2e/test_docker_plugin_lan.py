"""Issue 18, part 2, on the LAN: Docker's containers on a boxnet macvlan network
(`docker network create -d boxnet -o boxnet.driver=macvlan -o parent=ens33`), with a real
dockerd 20.10 in host1 of a LAN lab (boxnet.lab.dockerd). Observers: ping between a container
and the LAN's workstation both ways, `ip -j link` in the host (the handed-over link is gone
after `docker rm`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from boxnet.lab import Lab, LanLab, lan_lab
from boxnet.lab.dockerd import DockerEngine

pytestmark = pytest.mark.e2e


class Env(NamedTuple):
    lan: LanLab
    docker: DockerEngine
    image: str


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    lab = Lab("docker-plugin-lan")
    engine: DockerEngine | None = None
    try:
        lan = lan_lab(1, lab)
        engine = DockerEngine(lan.hosts[0], lab.tmpdir / "docker")
        lab.boxnetd(lan.hosts[0], "--docker-plugin-socket", str(engine.plugins / "boxnet.sock"))
        engine.start()
        yield Env(lan, engine, engine.load_busybox())
    finally:
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.close()
        lab.close()


def test_docker_container_on_a_boxnet_macvlan_network_is_on_the_lan(env: Env) -> None:
    e, host = env, env.lan.hosts[0]
    e.docker.cli(
        "network", "create", "-d", "boxnet", "--subnet", "192.168.198.0/24",
        "--gateway", "192.168.198.2", "--ip-range", "192.168.198.192/27",
        "-o", "boxnet.driver=macvlan", "-o", "parent=ens33", "lan",
    )  # fmt: skip
    e.docker.cli("run", "-d", "--name", "m1", "--network", "lan", e.image, "sleep", "600")
    inside = e.docker.cli("exec", "m1", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert "192.168.198.192/24" in inside
    ping = e.docker.cli("exec", "m1", "ping", "-c1", "-W2", "192.168.198.10").stdout
    assert "1 packets received" in ping
    assert e.lan.workstation.ping("192.168.198.192")
    # The child link was made in the host, moved in by dockerd; nothing of it stays here.
    assert all(x["ifname"] in ("lo", "ens33", "boxnet0") for x in host.ip_json("link"))
    e.docker.cli("rm", "-f", "m1")
    assert not e.lan.workstation.ping("192.168.198.192", timeout=1)
    assert all(x["ifname"] in ("lo", "ens33", "boxnet0") for x in host.ip_json("link"))
    e.docker.cli("network", "rm", "lan")
