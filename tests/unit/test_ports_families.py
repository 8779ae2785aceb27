"""Host port allocation across address families (issue 15): one binding per family the
container has, the families never clash with each other, refusals name the missing family."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from boxnet.core.ports import PortAllocator, _Taken
from boxnet.errors import InvalidArgument
from boxnet.model import PortRequest

ANY4, ANY6 = IPv4Address("0.0.0.0"), IPv6Address("::")


def req(host_ip: IPv4Address | IPv6Address | None = None, port: int = 48123) -> PortRequest:
    return PortRequest(80, "tcp", host_ip, port, port)


def test_any_address_clashes_within_its_family_only() -> None:
    taken = _Taken({("0.0.0.0", 8080), ("2001:db8::2", 9090)})
    assert taken.clashes(IPv4Address("192.0.2.1"), 8080)
    assert not taken.clashes(IPv6Address("2001:db8::5"), 8080)
    assert not taken.clashes(ANY6, 8080)
    assert taken.clashes(ANY6, 9090) and taken.clashes(IPv6Address("2001:db8::2"), 9090)
    assert not taken.clashes(ANY4, 9090)


def test_default_binding_per_family_of_the_container() -> None:
    alloc = PortAllocator()
    dual = alloc.allocate([req()], {}, ANY4, set(), ipv6=True)
    assert [(b.host_ip, b.host_port) for b in dual] == [(ANY4, 48123), (ANY6, 48123)]
    v4 = alloc.allocate([req()], {}, ANY4, set(), ipv6=False)
    assert [b.host_ip for b in v4] == [ANY4]
    v6 = alloc.allocate([req()], {}, ANY4, set(), ipv6=True, ipv4=False)
    assert [b.host_ip for b in v6] == [ANY6]
    # a network whose default host IP is one IPv4 address: that address alone
    one = alloc.allocate([req()], {}, IPv4Address("127.0.0.1"), set(), ipv6=True)
    assert [b.host_ip for b in one] == [IPv4Address("127.0.0.1")]


def test_a_family_the_container_lacks_is_refused() -> None:
    alloc = PortAllocator()
    with pytest.raises(InvalidArgument, match=r"\[::1\]: the container has no IPv6 address"):
        alloc.allocate([req(IPv6Address("::1"))], {}, ANY4, set(), ipv6=False)
    with pytest.raises(InvalidArgument, match=r"0\.0\.0\.0: the container has no IPv4 address"):
        alloc.allocate([req(ANY4)], {}, ANY4, set(), ipv6=True, ipv4=False)
    with pytest.raises(InvalidArgument, match=r"\[2001:db8::9\]: the host has no such address"):
        alloc.allocate([req(IPv6Address("2001:db8::9"))], {}, ANY4, set(), ipv6=True)


def test_the_records_index_is_read_in_place_and_never_written() -> None:
    """publish_requests hands the allocator Records' own index (host port -> host ips)."""
    index = {48123: {"0.0.0.0"}, 48124: {"127.0.0.1"}}
    wide = PortRequest(80, "tcp", None, 48123, 48126)
    chosen = PortAllocator().allocate([wide, wide], {"tcp": index}, ANY4, set())
    # 48123 is taken by 0.0.0.0, 48124 by 127.0.0.1 (which 0.0.0.0 overlaps): 48125 then 48126
    assert [b.host_port for b in chosen] == [48125, 48126]
    assert index == {48123: {"0.0.0.0"}, 48124: {"127.0.0.1"}}
