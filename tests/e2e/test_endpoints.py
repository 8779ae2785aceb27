"""Issue 17's missing endpoints, driven by boxnet's CLI and docker-py against a lab boxnetd:
events, top, stats, rename, pause/unpause, prune, df, cp (archive), diff."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

docker = pytest.importorskip("docker")


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon, Any]]:
    lab = Lab("endpoints")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        client = docker.DockerClient(base_url=f"unix://{d.socket}")
        yield basic, d, client
        client.close()
    finally:
        lab.close()


def test_events_of_a_run_stop_rm_filtered_by_container_and_type(env: Any) -> None:
    _basic, d, client = env
    since = time.time()
    d.cli("run", "-d", "--name", "evweb", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "evother", "busybox", "sleep", "1000")
    d.cli("stop", "-t", "1", "evweb")
    d.cli("rm", "evweb")
    until = time.time()
    mine = {"container": ["evweb"], "type": ["container"]}
    events = list(client.events(since=since, until=until, decode=True, filters=mine))
    actions = [e["Action"] for e in events]
    assert actions[:2] == ["create", "start"] and actions[-1] == "destroy", actions
    assert "die" in actions and "stop" in actions
    assert {e["Actor"]["Attributes"]["name"] for e in events} == {"evweb"}
    die = next(e for e in events if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] in ("143", "137")
    assert die["status"] == "die" and die["from"] == "busybox" and die["id"] == die["Actor"]["ID"]
    # network events of the same run: the default bridge's connect and disconnect
    nets = list(client.events(since=since, until=until, decode=True, filters={"type": "network"}))
    assert {e["Action"] for e in nets} >= {"connect", "disconnect"}
    assert all(e["Type"] == "network" for e in nets)
    # boxnet's CLI: the same history, one line an event
    out = d.cli(
        "events", "--since", str(int(since)), "--until", str(int(until) + 1),
        "--filter", "container=evweb", "--filter", "event=start",
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert len(lines) == 1 and " container start " in lines[0] and "name=evweb" in lines[0]
    bad = d.cli("events", "--filter", "colour=red", "--until", "1", check=False)
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr
    d.cli("rm", "-f", "evother")


def test_events_stream_live_until_the_client_hangs_up(env: Any) -> None:
    _basic, d, client = env
    stream = client.events(decode=True, filters={"event": ["create"]})
    d.cli("create", "--name", "evlive", "busybox", "true")
    first = next(stream)
    stream.close()
    assert first["Action"] == "create" and first["Actor"]["Attributes"]["name"] == "evlive"
    d.cli("rm", "evlive")
    json.dumps(first)


def test_top_lists_the_containers_processes(env: Any) -> None:
    _basic, d, client = env
    d.cli("run", "-d", "--name", "topweb", "busybox", "sh", "-c", "sleep 4321 & exec sleep 1234")
    web = client.containers.get("topweb")
    for _ in range(50):  # bounded: until the shell has forked and exec'd
        top = web.top()
        if len(top["Processes"]) == 2 and "sleep 1234" in top["Processes"][0][-1]:
            break
        time.sleep(0.1)
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    commands = [row[-1] for row in top["Processes"]]
    assert "sleep 1234" in commands and "sleep 4321" in commands, commands
    pids = [int(row[1]) for row in top["Processes"]]
    assert web.attrs["State"]["Pid"] in pids  # host PIDs, as Docker shows them
    custom = web.top(ps_args="-o pid,comm")
    assert custom["Titles"] == ["PID", "COMMAND"] and len(custom["Processes"]) == 2
    out = d.cli("top", "topweb").stdout
    assert out.splitlines()[0].split()[:3] == ["UID", "PID", "PPID"] and "sleep 1234" in out
    d.cli("stop", "-t", "0", "topweb")
    stopped = d.cli("top", "topweb", check=False)
    assert stopped.returncode == 1 and "is not running" in stopped.stderr
    d.cli("rm", "topweb")


def test_stats_count_the_containers_packets_memory_and_processes(env: Any) -> None:
    _basic, d, client = env
    d.cli("run", "-d", "--name", "statweb", "busybox", "sleep", "1000")
    web = client.containers.get("statweb")
    before = web.stats(stream=False)
    assert before["name"] == "/statweb" and before["pids_stats"]["current"] == 1
    assert before["memory_stats"]["usage"] > 0 and before["memory_stats"]["limit"] > 0
    assert before["cpu_stats"]["system_cpu_usage"] > before["precpu_stats"]["system_cpu_usage"]
    assert web.exec_run(["ping", "-c", "5", "-i", "0.2", "-s", "1000", "172.17.0.1"]).exit_code == 0
    after = web.stats(stream=False)
    rx = after["networks"]["eth0"]["rx_bytes"] - before["networks"]["eth0"]["rx_bytes"]
    assert rx >= 5 * 1000, (before["networks"], after["networks"])
    stream = web.stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    stream.close()
    assert second["precpu_stats"] == first["cpu_stats"]
    out = d.cli("stats", "--no-stream", "statweb").stdout.splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert out[1].split()[1] == "statweb" and out[1].split()[-1] == "1"
    d.cli("rm", "-f", "statweb")
