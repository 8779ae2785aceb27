"""Issue 17 with the real docker CLIs (Debian's 20.10 and the 28 one) against boxnetd: run
flags observed from inside the container and from the host, filters, inspect fields, refusals,
synchronous kill, network names with spaces and disconnecting from the creation network."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.lab import Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

# Debian's CLI 20.10, and a CLI 28 when $DOCKER_CLI_28 names one (Debian 12 has none, and
# `make test` refuses programs that `make install` does not provide).
CLIS = [
    c for c in ("/usr/bin/docker", os.environ.get("DOCKER_CLI_28", "")) if c and os.path.exists(c)
]


class Cli:
    def __init__(self, binary: str, d: Daemon, config_dir: Path) -> None:
        self.binary, self.d = binary, d
        self.environ = {**os.environ, "DOCKER_HOST": f"unix://{d.socket}",
                        "DOCKER_CONFIG": str(config_dir)}  # fmt: skip

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *args]
        return subprocess.run(
            argv, env=self.environ, capture_output=True, text=True, timeout=60, check=False
        )

    def ok(self, *args: str) -> str:
        res = self.run(*args)
        assert (res.returncode, res.stderr) == (0, ""), f"docker {' '.join(args)}: {res}"
        return res.stdout


@pytest.fixture(scope="module", params=CLIS or [pytest.param("", marks=pytest.mark.skip("no CLI"))])
def docker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cli]:
    lab = Lab("dockerflags")
    try:
        d = lab.boxnetd(basic_lab(lab).host)
        yield Cli(request.param, d, tmp_path_factory.mktemp("docker-config"))
    finally:
        lab.close()


def test_run_flags_seen_inside_and_on_the_host(docker: Cli, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # written by uid 1234
    script = "id -u > /out/uid; pwd > /out/pwd; cat /proc/sys/kernel/domainname > /out/dom;"
    script += " touch /ro-test 2> /out/ro; echo done > /out/done; sleep 1000"
    docker.ok("run", "-d", "--name", "flags", "-v", f"{tmp_path}:/out", "-u", "1234:1234",
              "-w", "/srv/app", "--read-only", "--domainname", "example.test", "--label",
              "tier=front", "--restart", "on-failure:2", "busybox", "sh", "-c", script)  # fmt: skip
    pid = int(docker.ok("inspect", "-f", "{{.State.Pid}}", "flags"))
    assert pid > 0
    deadline = 600
    while not (tmp_path / "done").exists() and deadline:  # bounded: the script's last step
        deadline -= 1
        subprocess.run(["sleep", "0.1"], check=True)
    assert (tmp_path / "uid").read_text() == "1234\n"
    assert (tmp_path / "pwd").read_text() == "/srv/app\n"
    assert (tmp_path / "dom").read_text() == "example.test\n"
    assert "Read-only file system" in (tmp_path / "ro").read_text()
    fmt = (
        "{{.Config.User}}|{{.Config.WorkingDir}}|{{.Config.Domainname}}|{{.Config.Labels.tier}}|"
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}|"
        "{{.HostConfig.ReadonlyRootfs}}|{{index .HostConfig.Binds 0}}"
    )
    assert docker.ok("inspect", "-f", fmt, "flags").strip() == (
        f"1234:1234|/srv/app|example.test|front|on-failure:2|true|{tmp_path}:/out"
    )
    assert docker.ok("ps", "--filter", "label=tier=front", "--format", "{{.Names}}") == "flags\n"
    assert docker.ok("ps", "-a", "--filter", "label=tier=back", "-q") == ""
    # kill answers once the container is down; the policy leaves a killed container alone.
    docker.ok("kill", "flags")
    assert docker.ok("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", "flags") == (
        "false 0\n"
    )
    assert not Path(f"/proc/{pid}").exists()
    docker.ok("rm", "flags")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        # (the 20.10 CLI drops --ip without a --network; it refuses --network-alias itself)
        (("--net", "bridge", "--ip", "172.17.0.9"), "user specified IP address is supported on"),
        (("-v", "b@d:/data"), "invalid characters for a local volume name"),
        (("--privileged",), "HostConfig.Privileged is not supported"),
        (("--memory", "1m"), "Minimum memory limit allowed is 6MB"),
        (("--restart", "always:3"), "maximum retry count"),
    ],
)
def test_refusals(docker: Cli, flags: tuple[str, ...], message: str) -> None:
    res = docker.run("run", "-d", *flags, "busybox", "true")
    assert res.returncode == 125 and message in res.stderr, res
    assert docker.ok("ps", "-aq") == ""


def test_networks_with_spaces_and_leaving_the_creation_network(docker: Cli) -> None:
    docker.ok("network", "create", "--label", "env=test", "my net")
    docker.ok("run", "-d", "--name", "mover", "--network", "my net", "busybox", "sleep", "1000")
    listed = docker.ok("network", "ls", "--filter", "label=env=test", "--format", "{{.Name}}")
    assert listed == "my net\n"
    custom = docker.ok("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}")
    assert custom == "my net\n"
    opts = json.loads(docker.ok("network", "inspect", "-f", "{{json .Options}}", "my net"))
    assert opts == {}  # nothing compose did not set
    docker.ok("network", "disconnect", "my net", "mover")
    links = docker.ok("exec", "mover", "ip", "-o", "link").splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    docker.ok("network", "connect", "my net", "mover")
    assert "eth" in docker.ok("exec", "mover", "ip", "-o", "link")
    docker.ok("rm", "-f", "mover")
    docker.ok("network", "rm", "my net")
