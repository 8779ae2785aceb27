"""Expiry of Docker IPAM's local leases (core/dockeripam.py) that no endpoint took: dockerd
asked for an address (RequestAddress) and died before CreateEndpoint. Real records (sqlite in a
temp dir), a fake clock; the overlay half is tests/unit/test_cluster_allocate.py."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, cast

import pytest

from boxnet.core.dockeripam import GRACE_ENV, GRACE_SECONDS, DockerIpam, provisional_owner
from boxnet.model import IPAMConfig, Network
from boxnet.store.db import Store
from boxnet.store.records import Records

SUBNET = IPv4Network("10.20.0.0/24")
NET = Network(
    id="n" * 64,
    name="dnet",
    driver="bridge",
    created="now",
    ipam=(IPAMConfig(SUBNET, IPv4Address("10.20.0.1")),),
)


class FakeNetworks:
    drivers = {"overlay": object()}  # not an OverlayDriver: no cluster store here

    def all(self) -> list[Network]:
        return [NET]

    def driver_of(self, net: Network) -> object:
        return object()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> tuple[DockerIpam, Records, Clock]:
    records = Records(Store(tmp_path / "db.sqlite"))
    clock = Clock()
    ipam = DockerIpam(cast(Any, FakeNetworks()), records, wall=clock, monotonic=clock)
    return ipam, records, clock


def request(ipam: DockerIpam) -> IPv4Address:
    return ipam.request_address(str(SUBNET), None, False).ip


def test_a_lease_no_endpoint_took_expires_after_the_grace_period(
    setup: tuple[DockerIpam, Records, Clock],
) -> None:
    ipam, records, clock = setup
    ip = request(ipam)
    assert ip == IPv4Address("10.20.0.2")
    owner = provisional_owner(NET.id, ip)
    assert ipam.young() == {owner}  # gc leaves it: its endpoint may be on its way
    clock.now += GRACE_SECONDS - 1
    assert ipam.expire() == [] and ip in records.leased_ips(NET.id)
    clock.now += 1
    (what,) = ipam.expire()
    assert "10.20.0.2" in what and "dnet" in what
    assert ip not in records.leased_ips(NET.id) and ipam.young() == set()
    assert request(ipam) == ip  # handed out again


def test_a_lease_handed_to_its_endpoint_never_expires(
    setup: tuple[DockerIpam, Records, Clock],
) -> None:
    ipam, records, clock = setup
    ip = request(ipam)
    ipam.hand_to_endpoint(NET, ip, "e" * 64)
    assert records.lease(NET.id, ip, "e" * 64, True)  # what the endpoint's attach does
    clock.now += 10 * GRACE_SECONDS
    assert ipam.expire() == []
    assert ip in records.leased_ips(NET.id)


def test_a_lease_an_earlier_daemon_left_counts_as_expired(
    setup: tuple[DockerIpam, Records, Clock],
) -> None:
    ipam, records, _clock = setup
    ip = IPv4Address("10.20.0.9")
    assert records.lease(NET.id, ip, provisional_owner(NET.id, ip), True)
    (what,) = ipam.expire()
    assert "10.20.0.9" in what and "before this daemon" in what


def test_the_grace_period_is_shortened_for_tests_only_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records(Store(tmp_path / "db.sqlite"))
    monkeypatch.setenv(GRACE_ENV, "3")
    assert DockerIpam(cast(Any, FakeNetworks()), records).grace == 3.0
    monkeypatch.setenv(GRACE_ENV, "nonsense")
    assert DockerIpam(cast(Any, FakeNetworks()), records).grace == GRACE_SECONDS


def test_housekeeping_chores_run_at_start_then_at_their_period() -> None:
    """The firewall guard's thread runs the expiry: at once when started (daemon start), even
    without a firewall, then once per period."""
    import threading

    from boxnet.core.reconcile import FirewallGuard

    calls: list[float] = []
    ran = threading.Event()
    guard = FirewallGuard(cast(Any, None), None, threading.RLock())
    guard.add_chore("count", 60.0, lambda: (calls.append(1), ran.set()))
    guard.start()
    try:
        assert ran.wait(5)
    finally:
        guard.stop()
    due: dict[str, float] = {}
    guard._run_chores(due)
    guard._run_chores(due)  # not due again for 60 s
    assert len(calls) == 2
