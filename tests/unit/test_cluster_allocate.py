"""Picking an overlay subnet from what the cluster has claimed (the pure half of claim_subnet),
and handing an address claim from Docker's IPAM to its endpoint."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from boxnet.cluster.allocate import (
    IP_PREFIX,
    claim_address,
    expired_claims,
    pick_subnet,
    release_address_of,
    release_claim,
    stamped,
    transfer_address,
)
from boxnet.cluster.store import KeyValue
from boxnet.errors import Conflict

POOLS = [(IPv4Network("10.99.0.0/22"), 24)]


def test_first_free_subnet_of_the_pool_size() -> None:
    assert pick_subnet({}, POOLS, None) == IPv4Network("10.99.0.0/24")
    claimed = {"10.99.0.0/24": "a", "10.99.1.0/25": "b"}
    assert pick_subnet(claimed, POOLS, None) == IPv4Network("10.99.2.0/24")


def test_pools_exhausted() -> None:
    claimed = {"10.99.0.0/22": "big"}
    with pytest.raises(Conflict, match="no free subnet"):
        pick_subnet(claimed, POOLS, None)


def test_requested_subnet_must_not_overlap() -> None:
    assert pick_subnet({"10.99.0.0/24": "a"}, POOLS, IPv4Network("10.98.0.0/16")) == IPv4Network(
        "10.98.0.0/16"
    )
    with pytest.raises(Conflict) as info:
        pick_subnet({"10.99.0.0/24": "a"}, POOLS, IPv4Network("10.99.0.0/16"))
    assert info.value.message == "subnet 10.99.0.0/16 overlaps 10.99.0.0/24 of overlay network a"


def test_this_hosts_own_address_space_is_avoided_too() -> None:
    avoid = [IPv4Network("10.99.0.0/23")]  # e.g. the underlay, or a local bridge network
    assert pick_subnet({}, POOLS, None, avoid) == IPv4Network("10.99.2.0/24")


class MemoryKv:
    """get/create/compare_and_put/delete with revisions: what the address claims use."""

    def __init__(self) -> None:
        self.data: dict[str, KeyValue] = {}
        self.revision = 0

    def get(self, key: str) -> KeyValue | None:
        return self.data.get(key)

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        return [kv for k, kv in sorted(self.data.items()) if k.startswith(prefix)], self.revision

    def _write(self, key: str, value: bytes) -> None:
        self.revision += 1
        self.data[key] = KeyValue(key, value, self.revision, self.revision, 0)

    def create(self, key: str, value: bytes, lease: int = 0) -> bool:
        if key in self.data:
            return False
        self._write(key, value)
        return True

    def compare_and_put(self, key: str, mod_revision: int, value: bytes) -> bool:
        kv = self.data.get(key)
        if (kv.mod_revision if kv is not None else 0) != mod_revision:
            return False
        self._write(key, value)
        return True

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def compare_and_delete(self, key: str, mod_revision: int) -> bool:
        kv = self.data.get(key)
        if kv is None or kv.mod_revision != mod_revision:
            return False
        del self.data[key]
        return True


SUBNET = IPv4Network("10.10.0.0/24")


def test_a_docker_ipam_claim_is_handed_to_its_endpoint() -> None:
    """RequestAddress claims under a provisional owner; CreateEndpoint transfers the claim, so
    the endpoint's own claim of that address succeeds, and ReleaseAddress then leaves it."""
    kv = MemoryKv()
    store: Any = kv
    ip = claim_address(store, "n1", SUBNET, "h1/docker-ipam")
    assert ip == IPv4Address("10.10.0.2")
    with pytest.raises(Conflict):  # not its own yet: another owner cannot take it
        claim_address(store, "n1", SUBNET, "h1/endpoint", ip)
    assert not transfer_address(store, "n1", ip, "h2/docker-ipam", "h2/endpoint")
    assert transfer_address(store, "n1", ip, "h1/docker-ipam", "h1/endpoint")
    assert claim_address(store, "n1", SUBNET, "h1/endpoint", ip) == ip
    release_address_of(store, "n1", ip, "h1/docker-ipam")  # Docker's ReleaseAddress: not its
    assert kv.get(f"{IP_PREFIX}n1/{ip}") is not None
    # The next claim (another host's dockerd) gets the next address.
    assert claim_address(store, "n1", SUBNET, "h2/docker-ipam") == IPv4Address("10.10.0.3")
    release_address_of(store, "n1", IPv4Address("10.10.0.3"), "h2/docker-ipam")
    assert kv.get(f"{IP_PREFIX}n1/10.10.0.3") is None


def test_a_stamped_claim_expires_after_the_grace_period_only() -> None:
    """Docker's IPAM claims carry when they were made: the host that made one releases it once
    it is grace seconds old (no endpoint took it); other holders' claims are never its own."""
    kv = MemoryKv()
    store: Any = kv
    a = claim_address(store, "n1", SUBNET, stamped("h1/docker-ipam", 1000))
    b = claim_address(store, "n1", SUBNET, stamped("h2/docker-ipam", 900))  # another host's
    c = claim_address(store, "n1", SUBNET, "h1/endpoint")  # an endpoint's: never provisional
    assert (a, b, c) == tuple(IPv4Address(f"10.10.0.{i}") for i in (2, 3, 4))
    assert expired_claims(store, "h1/docker-ipam", 1000 + 119, 120, 64) == []
    (old,) = expired_claims(store, "h1/docker-ipam", 1000 + 120, 120, 64)
    assert (old.network_id, old.ip, old.holder, old.made) == ("n1", a, "h1/docker-ipam", 1000)
    assert release_claim(store, old)
    assert kv.get(f"{IP_PREFIX}n1/{a}") is None
    assert kv.get(f"{IP_PREFIX}n1/{b}") is not None and kv.get(f"{IP_PREFIX}n1/{c}") is not None
    # Released, the address is handed out again (the lowest free one).
    assert claim_address(store, "n1", SUBNET, "h1/other") == a


def test_an_unstamped_provisional_claim_counts_as_expired() -> None:
    """Claims made before claims carried their time: nothing says they are young."""
    kv = MemoryKv()
    store: Any = kv
    ip = claim_address(store, "n1", SUBNET, "h1/docker-ipam")
    (claim,) = expired_claims(store, "h1/docker-ipam", 0, 120, 64)
    assert claim.ip == ip and claim.made is None


def test_expiry_is_bounded_per_round() -> None:
    kv = MemoryKv()
    store: Any = kv
    for _ in range(5):
        claim_address(store, "n1", SUBNET, stamped("h1/docker-ipam", 0))
    assert len(expired_claims(store, "h1/docker-ipam", 500, 120, 3)) == 3


def test_a_claim_transferred_after_it_was_read_is_not_released() -> None:
    """The endpoint's CreateEndpoint comes between the sweep's read and its delete: the delete
    compares the revision read, so the endpoint keeps its address."""
    kv = MemoryKv()
    store: Any = kv
    ip = claim_address(store, "n1", SUBNET, stamped("h1/docker-ipam", 0))
    (claim,) = expired_claims(store, "h1/docker-ipam", 500, 120, 64)
    assert transfer_address(store, "n1", ip, "h1/docker-ipam", "h1/endpoint")
    assert not release_claim(store, claim)
    held = kv.get(f"{IP_PREFIX}n1/{ip}")
    assert held is not None and held.value == b"h1/endpoint"
    assert expired_claims(store, "h1/docker-ipam", 500, 120, 64) == []


def test_a_stamped_claim_is_transferred_and_released_by_its_holder() -> None:
    kv = MemoryKv()
    store: Any = kv
    ip = claim_address(store, "n1", SUBNET, stamped("h1/docker-ipam", 7))
    # dockerd asking again for the same address: still this holder's.
    assert claim_address(store, "n1", SUBNET, stamped("h1/docker-ipam", 9), ip) == ip
    release_address_of(store, "n1", ip, "h1/docker-ipam")  # ReleaseAddress
    assert kv.get(f"{IP_PREFIX}n1/{ip}") is None
