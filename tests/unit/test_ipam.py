"""IPAM without root: subnets, ranges, gateways and auxiliary addresses, in IPv4 and IPv6, and the
records of networks and endpoints that carry one configuration / address per family."""

from __future__ import annotations

import re
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxnet.errors import Conflict, InvalidArgument
from boxnet.ipam.allocator import (
    DEFAULT_POOLS,
    Occupant,
    check_gateway,
    check_pool,
    check_static_address,
    check_subnet_free,
    first_host,
    pick_address,
    pick_subnet,
    reserved_addresses,
)
from boxnet.model import Endpoint, IPAMConfig, Network, mac_for_ip
from boxnet.store.records import _endpoint_doc, _endpoint_from, network_doc, network_from_doc

V6 = IPv6Network("2001:db8:1::/64")


def test_pick_subnet_from_ipv4_and_ipv6_pools() -> None:
    assert pick_subnet(DEFAULT_POOLS, [])[0] == IPv4Network("172.17.0.0/16")
    pools = ((IPv6Network("2001:db8::/56"), 64),)
    taken = [Occupant(IPv6Network("2001:db8::/64"), "network a")]
    subnet, skipped = pick_subnet(pools, taken)
    assert subnet == IPv6Network("2001:db8:0:1::/64")
    assert skipped == ["2001:db8::/64 overlaps network a (2001:db8::/64)"]


def test_occupants_of_the_other_family_never_clash() -> None:
    v4 = [Occupant(IPv4Network("0.0.0.0/0"), "everything IPv4")]
    assert pick_subnet(((V6, 64),), v4)[0] == V6
    check_subnet_free(V6, v4)
    with pytest.raises(Conflict, match="2001:db8:1::/64 overlaps network b"):
        check_subnet_free(V6, [Occupant(IPv6Network("2001:db8::/32"), "network b")])


def _v4(value: int, prefix: int) -> IPv4Network:
    return IPv4Network((value, prefix), strict=False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0xAC000000, 0xAC3FFFFF), st.integers(8, 30)), max_size=12),
    st.integers(12, 20),
)
def test_pick_subnet_agrees_with_ipaddress_overlaps(
    taken: list[tuple[int, int]], size: int
) -> None:
    """The integer bounds pick_subnet compares say what ipaddress's overlaps() says: the first
    candidate of the pool that overlaps no occupant, adjacent ones included."""
    occupied = [Occupant(_v4(v, p), f"o{i}") for i, (v, p) in enumerate(taken)]
    pool = ((IPv4Network("172.16.0.0/12"), size),)
    free = [
        c for c in IPv4Network("172.16.0.0/12").subnets(new_prefix=size)
        if not any(o.network.overlaps(c) for o in occupied)
    ]  # fmt: skip
    if not free:
        with pytest.raises(Conflict):
            pick_subnet(pool, occupied)
        return
    assert pick_subnet(pool, occupied)[0] == free[0]


def test_exhausted_pools_name_the_family() -> None:
    with pytest.raises(Conflict, match="non-overlapping IPv6 address pool"):
        pick_subnet(((V6, 64),), [Occupant(V6, "network c")])


@pytest.mark.parametrize(
    ("subnet", "gateway", "ok"),
    [
        ("10.1.0.0/24", "10.1.0.1", True),
        ("10.1.0.0/24", "10.1.0.0", False),  # network address
        ("10.1.0.0/24", "10.1.0.255", False),  # broadcast
        ("10.1.0.0/24", "10.2.0.1", False),
        ("2001:db8:1::/64", "2001:db8:1::1", True),
        ("2001:db8:1::/64", "2001:db8:1:0:ffff:ffff:ffff:ffff", True),  # no broadcast in IPv6
        ("2001:db8:1::/64", "2001:db8:1::", False),  # subnet-router anycast
        ("2001:db8:1::/64", "2001:db8:2::1", False),
        ("2001:db8:1::/64", "10.1.0.1", False),  # another family
    ],
)
def test_gateways(subnet: str, gateway: str, ok: bool) -> None:
    if ok:
        check_gateway(ip_network(subnet), ip_address(gateway))
    else:
        with pytest.raises(InvalidArgument, match=f"invalid gateway {gateway}"):
            check_gateway(ip_network(subnet), ip_address(gateway))


def test_ranges_and_aux_addresses_must_be_inside_their_subnet() -> None:
    check_pool(V6, IPv6Network("2001:db8:1::100/120"), {"router": "2001:db8:1::fe"})
    check_pool(IPv4Network("10.1.0.0/24"), IPv4Network("10.1.0.128/25"), {"p": "10.1.0.9"})
    with pytest.raises(InvalidArgument, match="invalid --ip-range 2001:db8:2::/120"):
        check_pool(V6, IPv6Network("2001:db8:2::/120"), {})
    with pytest.raises(InvalidArgument, match=re.escape("invalid --ip-range 10.1.0.0/28")):
        check_pool(V6, IPv4Network("10.1.0.0/28"), {})  # another family
    with pytest.raises(InvalidArgument, match="invalid --aux-address r=2001:db8:9::1"):
        check_pool(V6, None, {"r": "2001:db8:9::1"})


def test_reserved_addresses_per_family() -> None:
    v4 = IPv4Network("10.1.0.0/24")
    assert reserved_addresses(v4, IPv4Address("10.1.0.1"), ["10.1.0.9"]) == {
        IPv4Address("10.1.0.0"),
        IPv4Address("10.1.0.255"),
        IPv4Address("10.1.0.1"),
        IPv4Address("10.1.0.9"),
    }
    assert reserved_addresses(V6, IPv6Address("2001:db8:1::1"), []) == {
        IPv6Address("2001:db8:1::"),
        IPv6Address("2001:db8:1::1"),
    }


def test_pick_address_lowest_free_in_the_range_ipv4_and_ipv6() -> None:
    v4 = IPv4Network("10.1.0.0/24")
    taken = reserved_addresses(v4, IPv4Address("10.1.0.1"), [])
    assert pick_address(v4, None, taken) == IPv4Address("10.1.0.2")
    assert pick_address(v4, IPv4Network("10.1.0.128/25"), taken) == IPv4Address("10.1.0.128")
    taken6 = reserved_addresses(V6, first_host(V6), ["2001:db8:1::2"])
    assert pick_address(V6, None, taken6) == IPv6Address("2001:db8:1::3")
    in_range = pick_address(V6, IPv6Network("2001:db8:1::1:0/112"), taken6)
    assert in_range == IPv6Address("2001:db8:1::1:0")


def test_pick_address_is_quick_in_a_huge_ipv6_range_and_says_when_a_small_one_is_full() -> None:
    # A /64 has 2**64 addresses: only the taken ones are stepped over.
    taken = {V6.network_address + i for i in range(1000)}
    assert pick_address(V6, None, taken) == V6.network_address + 1000
    tiny = IPv4Network("10.1.0.0/30")
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        pick_address(tiny, None, reserved_addresses(tiny, IPv4Address("10.1.0.1"), ["10.1.0.2"]))
    small6 = IPv6Network("2001:db8:1::/126")
    full6 = reserved_addresses(small6, first_host(small6), ["2001:db8:1::2", "2001:db8:1::3"])
    with pytest.raises(Conflict, match="no available IPv6 addresses"):
        pick_address(small6, None, full6)


def test_static_addresses_ipv6() -> None:
    check_static_address(IPv6Address("2001:db8:1::10"), V6, IPv6Address("2001:db8:1::1"), [])
    with pytest.raises(InvalidArgument, match="is reserved"):
        check_static_address(IPv6Address("2001:db8:1::1"), V6, IPv6Address("2001:db8:1::1"), [])
    with pytest.raises(InvalidArgument, match="not in the network's subnet"):
        check_static_address(IPv6Address("2001:db8:2::1"), V6, None, [])


def test_network_records_carry_one_ipam_config_per_family() -> None:
    net = Network(
        id="a" * 64,
        name="dual",
        driver="bridge",
        created="now",
        ipam=(
            IPAMConfig(IPv4Network("10.1.0.0/24"), IPv4Address("10.1.0.1")),
            IPAMConfig(V6, IPv6Address("2001:db8:1::1"), IPv6Network("2001:db8:1::/120"), {}),
        ),
    )
    back = network_from_doc(network_doc(net))
    assert back == net
    assert back.family(6) is not None and back.family(6) == net.ipam[1]
    assert str(net.ipam[1].gateway_interface) == "2001:db8:1::1/64"


def test_records_from_before_address_families_still_load() -> None:
    old_net = (
        '{"id": "b", "name": "old", "driver": "bridge", "created": "", "subnet": "10.2.0.0/24",'
        ' "gateway": "10.2.0.1", "ip_range": null, "aux_addresses": {}, "host_binding": "0.0.0.0"}'
    )
    assert network_from_doc(old_net).ipam == (
        IPAMConfig(IPv4Network("10.2.0.0/24"), IPv4Address("10.2.0.1")),
    )
    old_endpoint = (
        '{"id": "e", "container_id": "c", "network_id": "n", "ifname": "eth0", "ip": "10.2.0.2",'
        ' "prefixlen": 24, "gateway": "10.2.0.1", "mac": "02:42:0a:02:00:02", "host_veth": "v",'
        ' "aliases": []}'
    )
    e = _endpoint_from(old_endpoint)
    assert (e.ip, e.prefixlen, e.gateway) == (IPv4Address("10.2.0.2"), 24, IPv4Address("10.2.0.1"))


def test_endpoints_carry_an_address_and_a_gateway_per_family() -> None:
    e = Endpoint(
        id="e",
        container_id="c",
        network_id="n",
        ifname="eth0",
        addresses=(ip_interface("2001:db8:1::2/64"), ip_interface("10.1.0.2/24")),
        gateways=(ip_address("2001:db8:1::1"), ip_address("10.1.0.1")),
        mac=mac_for_ip(ip_address("10.1.0.2")),
        host_veth="veth1",
    )
    assert _endpoint_from(_endpoint_doc(e)) == e
    # The IPv4 accessors (DNS A records, /etc/hosts, DNAT) find the IPv4 address wherever it is.
    assert (e.ip, e.prefixlen, e.gateway) == (IPv4Address("10.1.0.2"), 24, IPv4Address("10.1.0.1"))
    assert mac_for_ip(ip_address("2001:db8:1::a:b")) == "02:42:00:0a:00:0b"
