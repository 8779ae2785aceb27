"""Reconcile: rules flushed behind boxnet's back come back; gc removes only ownerless objects
with boxnet's prefixes and never anything foreign."""

from __future__ import annotations

import json
import time

import pytest

from boxnet.lab import Lab, basic_lab

pytestmark = pytest.mark.e2e


def table_exists(ns: object, name: str = "boxnet") -> bool:
    out = ns.run(["nft", "-j", "list", "tables"]).stdout  # type: ignore[attr-defined]
    return any(t.get("table", {}).get("name") == name for t in json.loads(out)["nftables"])


def test_flushed_ruleset_is_rebuilt_and_reload_works(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    d.cli("run", "-d", "--name", "c1", "busybox", "sleep", "1000")
    basic.host.run(["nft", "flush", "ruleset"])
    assert not table_exists(basic.host)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not table_exists(basic.host):
        time.sleep(0.2)
    assert table_exists(basic.host), "boxnet's rules were not rebuilt within 10 s"
    out = d.cli("exec", "c1", "wget", "-qO-", "http://203.0.113.1/").stdout
    assert json.loads(out)["client"] == "203.0.113.2"
    basic.host.run(["nft", "delete", "table", "inet", "boxnet"])
    d.cli("system", "reload")
    assert table_exists(basic.host)


def test_gc_removes_only_ownerless_objects_with_our_prefixes(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    d.cli("run", "-d", "--name", "keep", "busybox", "sleep", "1000")
    h = basic.host
    # Orphans that look like ours: a veth on boxnet0 and a br-<12 hex> bridge nobody owns.
    h.run(["ip", "link", "add", "vethdead000", "type", "veth", "peer", "name", "deadpeer"])
    h.run(["ip", "link", "set", "vethdead000", "master", "boxnet0"])
    h.run(["ip", "link", "add", "br-0123456789ab", "type", "bridge"])
    # Foreign objects: never touched, even with similar names.
    h.run(["ip", "link", "add", "br0", "type", "bridge"])
    h.run(["ip", "link", "add", "vethforeign", "type", "veth", "peer", "name", "fpeer"])
    h.run(["ip", "link", "set", "vethforeign", "master", "br0"])
    d.cli("system", "gc")
    names = {link["ifname"] for link in h.ip_json("link")}
    assert "vethdead000" not in names and "br-0123456789ab" not in names
    assert {"br0", "vethforeign", "boxnet0"} <= names
    keep_veth = json.loads(d.cli("inspect", "--format", "json", "keep").stdout)[0][
        "NetworkSettings"
    ]["Networks"]["bridge"]["HostInterfaceName"]
    assert keep_veth in names
    assert d.cli("exec", "keep", "ping", "-c1", "-W2", "172.17.0.1", check=False).returncode == 0
