"""Issue 17: `--restart` policies, observed through a host file each run of the container appends
to (a bind mount) and through inspect's RestartCount; also across a daemon restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

BOUND = 60.0  # an upper bound for waits, never a measured time


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon]]:
    lab = Lab("restarts")
    try:
        basic = basic_lab(lab)
        yield basic, lab.boxnetd(basic.host)
    finally:
        lab.close()


@pytest.fixture
def d(env: tuple[BasicLab, Daemon]) -> Iterator[Daemon]:
    daemon = env[1]
    yield daemon
    assert daemon.remove_all_containers() == []


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return data[0] if isinstance(data, list) else data


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"not reached within {BOUND}s: {what}"
        time.sleep(0.1)


def settled(d: Daemon, name: str) -> bool:
    state = inspect(d, name)["State"]
    return not state["Running"] and not state["Restarting"]


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_on_failure_restarts_exactly_n_times(d: Daemon, tmp_path: Path) -> None:
    script = "echo run >> /out/runs; exit 3"
    d.cli("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "-v", f"{tmp_path}:/out",
          "busybox", "sh", "-c", script)  # fmt: skip
    until(lambda: runs(tmp_path / "runs") == 3 and settled(d, "flaky"), "three runs")
    info = inspect(d, "flaky")
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 3
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert runs(tmp_path / "runs") == 3
    # A success is not a failure: no restart.
    d.cli("run", "-d", "--name", "fine", "--restart", "on-failure", "-v", f"{tmp_path}:/out",
          "busybox", "sh", "-c", "echo ok >> /out/fine")  # fmt: skip
    until(lambda: settled(d, "fine"), "fine exited")
    assert inspect(d, "fine")["RestartCount"] == 0 and runs(tmp_path / "fine") == 1


def test_always_until_stopped_and_kill_is_final(d: Daemon, tmp_path: Path) -> None:
    d.cli("run", "-d", "--name", "loop", "--restart", "always", "-v", f"{tmp_path}:/out",
          "busybox", "sh", "-c", "echo run >> /out/runs")  # fmt: skip
    until(lambda: runs(tmp_path / "runs") >= 3, "three runs of an always container")
    d.cli("stop", "loop")
    assert settled(d, "loop")
    seen = runs(tmp_path / "runs")
    # A fresh start of the same container, then a kill: the policy does not bring it back.
    d.cli("run", "-d", "--name", "killed", "--restart", "on-failure", "busybox", "sleep", "1000")
    pid = inspect(d, "killed")["State"]["Pid"]
    d.cli("kill", "killed")
    # kill answers once the container is down (Docker's synchronous SIGKILL).
    assert settled(d, "killed") and not Path(f"/proc/{pid}").exists()
    info = inspect(d, "killed")
    assert info["State"]["ExitCode"] == 137 and info["RestartCount"] == 0
    assert runs(tmp_path / "runs") == seen and settled(d, "loop")


def test_a_daemon_restart_brings_back_always_not_stopped_unless_stopped(d: Daemon) -> None:
    for name, policy in (("alw", "always"), ("unl", "unless-stopped"), ("nop", "no")):
        d.cli("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000")
        d.cli("stop", "-t", "0", name)
    d.restart()
    until(lambda: inspect(d, "alw")["State"]["Running"], "always container back")
    assert not inspect(d, "unl")["State"]["Running"]
    assert not inspect(d, "nop")["State"]["Running"]
    pid = inspect(d, "alw")["State"]["Pid"]
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
