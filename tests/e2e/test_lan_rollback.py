"""hostbridge create/rm against a real lab namespace, in-process, with a step made to fail:
every earlier step must be undone (observer: `ip -j addr/route/link` in the namespace)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.errors import KernelError
from boxnet.kernel import lan as klan
from boxnet.kernel.links import ipr_in
from boxnet.lab import Lab, LanLab, lan_lab
from boxnet.lab.netns import Netns
from boxnet.lan.hostbridge import HostBridges
from boxnet.store.db import Store
from boxnet.store.intents import Intents
from boxnet.store.lan_records import LanRecords

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LanLab, HostBridges]]:
    lab = Lab("lanrb")
    try:
        lan = lan_lab(1, lab)
        host = lan.hosts[0]
        # An extra static route and an on-link route: both must move and come back.
        host.ip("route", "add", "10.9.0.0/16", "via", "192.168.198.2", "metric", "50")
        host.ip("route", "add", "10.8.0.0/16", "via", "10.99.99.1", "dev", "ens33", "onlink")
        store = Store(Path(tmp_path_factory.mktemp("lanrb")) / "boxnet.db")
        with ipr_in(host.path) as ipr:
            yield lan, HostBridges(ipr, LanRecords(store), Intents(store))
        store.close()
    finally:
        lab.close()


def state(ns: Netns) -> tuple[Any, Any, Any]:
    """Addresses, every IPv4 route in full, links (minus what the kernel changes by itself)."""
    addrs = sorted(
        (x["ifname"], a["family"], a["local"], a["prefixlen"])
        for x in ns.ip_json("addr")
        for a in x["addr_info"]
        if not a["local"].startswith("fe80")
    )
    links = sorted(
        (x["ifname"], x.get("address"), x["mtu"], x.get("master"), "UP" in x["flags"])
        for x in ns.ip_json("link")
    )
    return addrs, ns.ip_json("-4", "route"), links


@pytest.mark.parametrize("fail_at", [1, 2, 4])  # 1 address, then 3 routes
def test_failed_create_is_rolled_back(
    env: tuple[LanLab, HostBridges], fail_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    lan, hb = env
    host = lan.hosts[0]
    before = state(host)
    calls = {"n": 0}
    real_add_route, real_add_addr = klan.add_route, klan.add_addr

    def failing(real: Any) -> Any:
        def step(*args: Any) -> None:
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise KernelError("injected failure")
            real(*args)

        return step

    monkeypatch.setattr(klan, "add_route", failing(real_add_route))
    monkeypatch.setattr(klan, "add_addr", failing(real_add_addr))
    with pytest.raises(KernelError, match="injected"):
        hb.create("br0", "ens33")
    assert state(host) == before
    assert hb.records.hostbridges() == []
    assert hb.intents.pending(include_own=True) == []  # rolled back: the intent is closed


def test_create_then_remove_restores_exactly(env: tuple[LanLab, HostBridges]) -> None:
    lan, hb = env
    host = lan.hosts[0]
    before = state(host)
    hb.create("br0", "ens33")
    routes = {(r.get("dst"), r.get("dev")) for r in host.ip_json("route")}
    assert {("10.9.0.0/16", "br0"), ("10.8.0.0/16", "br0"), ("default", "br0")} <= routes
    assert lan.workstation.ping("192.168.198.142")
    hb.remove("br0")
    assert state(host) == before
    assert lan.workstation.ping("192.168.198.142")
