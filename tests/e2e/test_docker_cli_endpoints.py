"""Issue 17's added endpoints through the real docker CLI (Debian's 20.10, /usr/bin/docker):
events, top, stats, rename, pause, cp, diff, container prune, system df. Observers: the CLI's
exit codes, stdout, and an empty stderr (no warning, no protocol complaint)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.lab import Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"
# A docker CLI 28 only on request, by hand (see test_docker_cli.newer_cli).
NEWER = os.environ.get("DOCKER_CLI_28") or ""


class Cli:
    def __init__(self, d: Daemon, config_dir: Path, binary: str) -> None:
        self.d, self.binary = d, binary
        self.environ = {**os.environ, "DOCKER_HOST": f"unix://{d.socket}"}
        self.environ["DOCKER_CONFIG"] = str(config_dir)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], env=self.environ, capture_output=True, text=True, timeout=60
        )

    def ok(self, *args: str) -> str:
        res = self.run(*args)
        assert (res.returncode, res.stderr) == (0, ""), f"docker {' '.join(args)}: {res}"
        return res.stdout


@pytest.fixture(scope="module", params=["20.10", "28"])
def cli(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    binary = DOCKER if request.param == "20.10" else NEWER
    if not binary:
        pytest.skip("docker CLI 28: set DOCKER_CLI_28 to its path")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} missing: `make deb` installs docker.io (only its client is used)")
    lab = Lab("docker-cli-ep")
    try:
        basic = basic_lab(lab)
        yield Cli(lab.boxnetd(basic.host), tmp_path_factory.mktemp("docker-config"), binary)
    finally:
        lab.close()


def test_events_top_stats_with_the_docker_cli(cli: Cli) -> None:
    cli.ok("run", "-d", "--name", "dkweb", "busybox", "sleep", "1000")
    top = cli.ok("top", "dkweb").splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and top[1].endswith("sleep 1000")
    stats = cli.ok("stats", "--no-stream", "dkweb").splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    row = stats[1].split()
    assert row[1] == "dkweb" and row[-1] == "1"  # PIDS
    cli.ok("rename", "dkweb", "dkweb2")
    cli.ok("pause", "dkweb2")
    assert "(Paused)" in cli.ok("ps", "--format", "{{.Names}} {{.Status}}")
    cli.ok("unpause", "dkweb2")
    cli.ok("rm", "-f", "dkweb2")
    until = str(int(time.time()) + 1)
    events = cli.ok("events", "--since", "0", "--until", until, "--filter", "type=container")
    lines = [x for x in events.splitlines() if "name=dkweb" in x]
    actions = [x.split()[2] for x in lines]
    for action in ("create", "start", "rename", "pause", "unpause", "kill", "die", "destroy"):
        assert action in actions, (action, lines)


def test_cp_diff_prune_df_with_the_docker_cli(cli: Cli, tmp_path: Path) -> None:
    cli.ok("run", "-d", "--name", "dkcp", "busybox", "sleep", "1000")
    local = tmp_path / "in.txt"
    local.write_text("from the docker cli\n")
    cli.ok("cp", str(local), "dkcp:/in.txt")
    cli.ok("cp", "dkcp:/in.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "from the docker cli\n"
    assert "A /in.txt" in cli.ok("diff", "dkcp").splitlines()
    contents = tmp_path / "etc-contents"
    contents.mkdir()
    cli.ok("cp", "dkcp:/etc/.", str(contents))  # "/." : the directory's contents
    assert (contents / "hostname").read_text().strip() == cli.ok(
        "inspect", "-f", "{{.Id}}", "dkcp"
    )[:12]
    cli.ok("cp", str(contents) + "/.", "dkcp:/tmp")
    assert cli.ok("exec", "dkcp", "ls", "/tmp/hostname").strip() == "/tmp/hostname"
    cli.ok("create", "--name", "dkstopped", "busybox", "true")
    pruned = cli.ok("container", "prune", "-f")
    assert "Total reclaimed space" in pruned
    assert cli.ok("ps", "-a", "--format", "{{.Names}}").split() == ["dkcp"]
    df = cli.ok("system", "df").splitlines()
    assert df[0].split()[:2] == ["TYPE", "TOTAL"] and df[2].split()[:3] == ["Containers", "1", "1"]
    cli.ok("network", "create", "dkunused")
    cli.ok("create", "--name", "dkstopped2", "busybox", "true")
    pruned = cli.ok("system", "prune", "-f")  # containers, networks, images, build cache
    assert "dkunused" in pruned and "Total reclaimed space" in pruned
    assert cli.ok("ps", "-a", "--format", "{{.Names}}").split() == ["dkcp"]
    assert "dkunused" not in cli.ok("network", "ls")
    cli.ok("rm", "-f", "dkcp")
