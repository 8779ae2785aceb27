"""Crash safety: the daemon dies (os._exit, like kill -9) at every named step of a change; the
next start must leave no kernel object, record or reservation without its owner, and no owner
without its kernel objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from boxnet.drivers import BridgeDriver
from boxnet.faults import ENV, STEPS
from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e


def snapshot(basic: BasicLab, d: Daemon) -> dict[str, Any]:
    """What the kernel and the records say, from independent observers."""
    links = basic.host.ip_json("link")
    veths = sorted(x["ifname"] for x in links if x["ifname"].startswith("veth"))
    # What every running container can reach on its own interfaces (owners have their objects).
    bridges = sorted(x["ifname"] for x in links if x["ifname"].startswith("br-"))
    pub = json.loads(
        basic.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout
    )
    elements = next(x["map"].get("elem", []) for x in pub["nftables"] if "map" in x)
    netns_files = sorted(p.name for p in (d.exec_root / "netns").glob("*"))
    containers = [
        json.loads(line)
        for line in d.cli("ps", "-a", "--format", "json").stdout.splitlines()
        if line.strip()
    ]
    return {
        "veths": veths,
        "bridges": bridges,
        "dnat_elements": len(elements),
        "netns": netns_files,
        "running": sorted(c["Names"] for c in containers if c["State"] == "running"),
        "networks": sorted(
            json.loads(line)["Name"]
            for line in d.cli("network", "ls", "--format", "json").stdout.splitlines()
            if line.strip()
        ),
    }


def owned(basic: BasicLab, d: Daemon) -> dict[str, Any]:
    """What the records claim: the veths of running containers' endpoints, their netns."""
    veths, netns = [], []
    for line in d.cli("ps", "-q", "--no-trunc").stdout.split():
        info = json.loads(d.cli("inspect", "--format", "json", line).stdout)[0]
        for net in info["NetworkSettings"]["Networks"].values():
            if net.get("HostInterfaceName"):
                veths.append(net["HostInterfaceName"])
        if info["NetworkSettings"]["SandboxKey"]:
            netns.append(info["Id"][:12])
    return {"veths": sorted(veths), "netns": sorted(netns)}


# Core's steps and the bridge driver's (the macvlan driver's need a LAN: test_lan_crash.py).
@pytest.mark.parametrize("step", STEPS + BridgeDriver.steps)
def test_crash_at_every_step_leaks_nothing(
    lab: Lab, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    d.cli("run", "-d", "--name", "steady", "-p", "8080:80", "busybox", "sleep", "1000")
    steady_id = d.cli("inspect", "-f", "{{.Id}}", "steady").stdout.strip()
    steady_dir = d.data_root / "containers" / steady_id
    if step.startswith(("network.connect", "network.disconnect")):
        d.cli("network", "create", "side")
    if step.startswith("network.disconnect"):
        d.cli("network", "connect", "side", "steady")
    if step.startswith("network.rm"):
        d.cli("network", "create", "crashnet")
    monkeypatch.setenv(ENV, step)
    d.restart()  # the daemon now dies at `step`
    if step.startswith("network.connect"):
        d.cli("network", "connect", "side", "steady", check=False)
    elif step.startswith("network.disconnect"):
        d.cli("network", "disconnect", "side", "steady", check=False)
    elif step.startswith("network.rm"):
        d.cli("network", "rm", "crashnet", check=False)
    elif step.startswith("network."):
        d.cli("network", "create", "crashnet", check=False)
    elif step == "container.exit.teardown":
        d.cli("kill", "steady", check=False)
    elif step.startswith("container.rm."):
        d.cli("rm", "-f", "steady", check=False)
    else:
        d.cli(
            "run",
            "-d",
            "--name",
            "victim",
            "-p",
            "9090:80",
            "busybox",
            "sleep",
            "1000",
            check=False,
        )
    assert d.wait(10) is not None, f"the daemon did not crash at {step}"
    monkeypatch.delenv(ENV)
    d.start()
    assert d.pending_intents() == []  # every interrupted change was resolved at start
    if step == "container.rm.forgotten":  # rm -f answered; what its shim's exit was to remove
        assert not steady_dir.exists()
    if step != "container.start.recorded":  # the only step after its change's intent closed
        assert "interrupted change" in d.log_path.read_text(), "no intent was left to resolve"
    state = snapshot(basic, d)
    claims = owned(basic, d)
    assert state["veths"] == claims["veths"], state
    assert state["netns"] == claims["netns"], state
    assert state["dnat_elements"] == sum(
        len(
            json.loads(d.cli("inspect", "--format", "json", n.lstrip("/")).stdout)[0][
                "NetworkSettings"
            ]["Ports"]
            or {}
        )
        for n in state["running"]
    )
    # The survivor still works on every network it is recorded on (unless rm -f had already
    # removed it from the records when the daemon died).
    survivors = [] if step == "container.rm.forgotten" else ["steady"]
    for net in (
        n
        for name in survivors
        for n in json.loads(d.cli("inspect", "--format", "json", name).stdout)[0][
            "NetworkSettings"
        ]["Networks"].values()
    ):
        if not net["EndpointID"]:  # configured, not attached: the survivor was stopped
            continue
        gw = net["Gateway"]
        assert d.cli("exec", "steady", "ping", "-c1", "-W2", gw, check=False).returncode == 0, gw
    # Every leftover can be removed, and a new container gets a fresh address and port.
    d.cli("rm", "-f", "victim", check=False)
    d.cli("network", "rm", "crashnet", check=False)
    d.cli("network", "disconnect", "side", "steady", check=False)
    d.cli("network", "rm", "side", check=False)
    out = d.cli("run", "-d", "--name", "after", "-p", "9090:80", "busybox", "sleep", "1000")
    assert out.returncode == 0
    info = json.loads(d.cli("inspect", "--format", "json", "after").stdout)[0]
    assert info["NetworkSettings"]["IPAddress"] in ("172.17.0.2", "172.17.0.3")
    bridges = {x["ifname"] for x in basic.host.ip_json("link") if x["ifname"].startswith("br-")}
    nets = json.loads(d.cli("network", "inspect", "--format", "json", "bridge").stdout)
    assert not bridges - {n["Options"].get("com.docker.network.bridge.name") for n in nets}
