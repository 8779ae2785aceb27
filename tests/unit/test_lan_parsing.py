"""Pure parts of issue 6: pipework's U:STRING MAC, address checks, request parsing."""

from __future__ import annotations

import subprocess

import pytest

from boxnet.errors import InvalidArgument
from boxnet.lan.pipework import _check_address, mac_from_string, parse_request, random_mac


def test_u_string_mac_matches_pipework_shell_pipeline() -> None:
    # pipework: echo STRING | md5sum | sed 's/^\(..\)\(..\)\(..\)\(..\)\(..\).*$/02:\1:\2:\3:\4:\5/'
    digest = subprocess.run(
        ["md5sum"], input="web1\n", capture_output=True, text=True, check=True
    ).stdout
    expected = "02:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))
    assert mac_from_string("web1") == expected
    assert mac_from_string("web1") != mac_from_string("web2")


def test_random_mac_is_local_unicast() -> None:
    first = int(random_mac().split(":")[0], 16)
    assert first & 0x02 and not first & 0x01


@pytest.mark.parametrize(
    ("spec", "gateway", "message"),
    [
        ("192.168.198.0/24", "", "network address"),
        ("192.168.198.255/24", "", "broadcast address"),
        ("192.168.198.145/24", "10.0.0.1", "outside 192.168.198.0/24"),
        ("192.168.198.145/24", "192.168.198.145", "own address"),
        ("192.168.198.300/24", "", "invalid address"),
    ],
)
def test_bad_addresses(spec: str, gateway: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _check_address(spec, gateway)


def test_good_address_and_defaults() -> None:
    assert str(_check_address("192.168.198.145/24", "192.168.198.2")) == "192.168.198.145/24"
    req = parse_request({"HostInterface": "br0", "Container": "c", "Address": "dhcp"})
    assert req["ContainerInterface"] == "eth1" and req["Gateway"] == ""
    with pytest.raises(InvalidArgument):
        parse_request({"Container": "c"})
