"""Picking an overlay subnet from what the cluster has claimed (the pure half of claim_subnet)."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from boxnet.cluster.allocate import pick_subnet
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
