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
