"""The Docker SDK for Python, pointed at boxnetd's socket, drives containers and networks."""

from __future__ import annotations

import pytest

from boxnet.lab import Lab, basic_lab

pytestmark = pytest.mark.e2e

docker = pytest.importorskip("docker")


def test_docker_sdk_against_boxnetd(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    client = docker.DockerClient(base_url=f"unix://{d.socket}")
    assert client.ping() is True
    web = client.containers.run(
        "busybox", ["sleep", "1000"], detach=True, name="sdkweb", ports={"80/tcp": 8080}
    )
    web.reload()
    assert web.status == "running"
    assert web.attrs["NetworkSettings"]["IPAddress"] == "172.17.0.2"
    assert web.ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert [c.name for c in client.containers.list()] == ["sdkweb"]
    result = web.exec_run(["ping", "-c1", "-W2", "172.17.0.1"])
    assert result.exit_code == 0 and b"1 packets received" in result.output
    failing = web.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert failing.exit_code == 3 and b"out" in failing.output and b"err" in failing.output
    net = client.networks.create("sdknet", driver="bridge")
    assert "sdknet" in [n.name for n in client.networks.list()]
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    web.stop(timeout=1)
    web.remove()
    net.remove()
    assert client.containers.list(all=True) == []
