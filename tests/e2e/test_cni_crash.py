"""Crash safety of CNI attachments (core/external.py): boxnetd dies (os._exit, like kill -9) at
each named step of an ADD or a DEL; the next start must leave no veth, DNAT element or address
without its attachment, keep the attachments whose namespace lives, and an empty journal.
Observers: `ip -j` on the host and in the namespaces, `nft -j`, ping."""

from __future__ import annotations

import json
from ipaddress import ip_interface

import pytest
from cni_helpers import cni, config

from boxnet.faults import ENV, EXTERNAL_STEPS
from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e


def veths(basic: BasicLab) -> set[str]:
    return {x["ifname"] for x in basic.host.ip_json("link") if x["ifname"].startswith("veth")}


def dnat_elements(basic: BasicLab) -> int:
    listed = basic.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout
    return len(next(x["map"].get("elem", []) for x in json.loads(listed)["nftables"] if "map" in x))


def with_port(d: Daemon, host_port: int) -> dict[str, object]:
    mapping = {"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}
    return config(d, runtimeConfig={"portMappings": [mapping]})


@pytest.mark.parametrize("step", EXTERNAL_STEPS)
def test_crash_at_every_external_step_leaks_nothing(
    lab: Lab, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    steady, victim = lab.netns("steady"), lab.netns("victim")
    rc, kept = cni("ADD", with_port(d, 8081), "steady", steady.path)
    assert rc == 0, kept
    before_veths = veths(basic)
    if step.startswith("external.detach"):
        assert cni("ADD", with_port(d, 8082), "victim", victim.path)[0] == 0
    monkeypatch.setenv(ENV, step)
    d.restart()  # the daemon now dies at `step`
    command = "DEL" if step.startswith("external.detach") else "ADD"
    rc, err = cni(command, with_port(d, 8082), "victim", victim.path)
    assert rc == 1 and err["code"] == 11, err  # the daemon hung up: try again later
    assert d.wait(10) is not None, f"the daemon did not crash at {step}"
    monkeypatch.delenv(ENV)
    d.start()
    assert d.pending_intents() == []
    assert "interrupted change" in d.log_path.read_text()
    survived = step == "external.attach.recorded"  # recorded: complete, its namespace lives
    inside = [x["ifname"] for x in victim.ip_json("link") if x["ifname"] != "lo"]
    assert inside == (["eth0"] if survived else [])
    assert len(veths(basic) - before_veths) == (1 if survived else 0)
    assert before_veths <= veths(basic)
    assert dnat_elements(basic) == (2 if survived else 1)
    # The survivor still works, and the victim can be attached (again) and detached.
    gateway = kept["ips"][0]["gateway"]
    assert steady.ping(gateway)
    rc, again = cni("ADD", with_port(d, 8082), "victim", victim.path)
    assert rc == 0, again
    assert steady.ping(str(ip_interface(again["ips"][0]["address"]).ip))
    assert cni("DEL", with_port(d, 8082), "victim", victim.path) == (0, None)
    assert veths(basic) == before_veths and dnat_elements(basic) == 1
