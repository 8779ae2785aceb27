"""One value at a time: bip, CIDRs, addresses, pools, DNS, MTU, booleans, JSON types."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address
from pathlib import Path

import pytest

from boxnet.config import ConfigErrors, ConfigProblem, DaemonConfig, resolve_config

EMPTY = str(Path(__file__).resolve().parent.parent / "data" / "daemon-json" / "empty-object.json")


def ok(*argv: str) -> DaemonConfig:
    return resolve_config(["--config-file", EMPTY, *argv], env={})


def bad(*argv: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigErrors) as info:
        resolve_config(["--config-file", EMPTY, *argv], env={})
    return info.value.errors


def bad_one(*argv: str) -> ConfigProblem:
    problems = bad(*argv)
    assert len(problems) == 1, [p.headline() for p in problems]
    return problems[0]


def bad_file(tmp_path: Path, content: object) -> list[ConfigProblem]:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(content, indent=1))
    with pytest.raises(ConfigErrors) as info:
        resolve_config(["--config-file", str(path)], env={})
    return info.value.errors


# -- bip ---------------------------------------------------------------------------------------


def test_bip_network_address_is_refused_with_the_gateway_as_fix() -> None:
    problem = bad_one("--bip", "172.17.0.0/16")
    assert problem.headline() == (
        "flag --bip: bip: 172.17.0.0/16 is the network address, not a host address"
    )
    assert problem.hint == (
        "use 172.17.0.1/16, the gateway address, not the network address 172.17.0.0/16"
    )
    assert problem.value == "172.17.0.0/16"


def test_bip_broadcast_and_too_long_prefix() -> None:
    assert bad_one("--bip", "10.0.0.255/24").message == (
        "10.0.0.255/24 is the broadcast address of 10.0.0.0/24, not a host address"
    )
    problem = bad_one("--bip", "10.0.0.1/31")
    assert problem.message == "/31 leaves no address for containers"
    assert problem.hint == "use /30 or shorter, e.g. 10.0.0.1/24"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1", '"10.0.0.1" has no prefix length'),
        ("10.0.0.1/33", 'invalid CIDR "10.0.0.1/33": /33 is not a valid IPv4 prefix length (0-32)'),
        ("10.0.0.1/", 'invalid CIDR "10.0.0.1/": / is not a valid IPv4 prefix length (0-32)'),
        ("300.0.0.1/24", 'invalid CIDR "300.0.0.1/24": "300.0.0.1" is not an IPv4 address'),
        (
            "fd00::1/64",
            'invalid CIDR "fd00::1/64": "fd00::1" is an IPv6 address; this option takes IPv4',
        ),
        ("127.0.0.2/8", "127.0.0.2 is a loopback address and cannot be a bridge address"),
        ("10.0.0.1/٢٤", 'invalid CIDR "10.0.0.1/٢٤": /٢٤ is not a valid IPv4 prefix length (0-32)'),
    ],
)
def test_bip_syntax(text: str, message: str) -> None:
    assert bad_one("--bip", text).message == message


def test_bip_dotted_mask_hint() -> None:
    assert bad_one("--bip", "10.0.0.1/255.255.255.0").hint == (
        "write the mask as a prefix length: 10.0.0.1/24, not 10.0.0.1/255.255.255.0"
    )
    assert bad_one("--bip", "10.0.0.1").hint == "add the mask, e.g. 10.0.0.1/24"


def test_bip_any_host_address_is_fine() -> None:
    assert ok("--bip", "192.168.1.5/24").bip == IPv4Interface("192.168.1.5/24")


# -- fixed-cidr, addresses -----------------------------------------------------------------------


def test_fixed_cidr_with_host_bits_is_refused_not_truncated() -> None:
    problem = bad_one("--fixed-cidr", "172.17.5.7/24")
    assert problem.message == "172.17.5.7/24 is not a network address: its network is 172.17.5.0/24"
    assert problem.hint == "write 172.17.5.0/24"


def test_addresses() -> None:
    assert (
        bad_one("--default-gateway", "10.0.0.256").message == '"10.0.0.256" is not an IPv4 address'
    )
    assert bad_one("--ip", "::1").message == '"::1" is an IPv6 address; this option takes IPv4'
    assert ok("--ip", "127.0.0.1").ip == IPv4Address("127.0.0.1")


# -- DNS -----------------------------------------------------------------------------------------


def test_dns_servers_ipv4_and_ipv6() -> None:
    config = ok("--dns", "10.20.1.1", "--dns", "2001:db8::53")
    assert config.dns == (IPv4Address("10.20.1.1"), IPv6Address("2001:db8::53"))
    assert bad_one("--dns", "dns.google").message == '"dns.google" is not an IP address'


def test_every_bad_list_item_is_reported(tmp_path: Path) -> None:
    problems = bad_file(tmp_path, {"dns": ["1.1.1.1", "x", "y"]})
    assert [(p.source.rsplit(":", 2)[1:], p.message) for p in problems] == [
        (["4", "3"], '"x" is not an IP address'),
        (["5", "3"], '"y" is not an IP address'),
    ]


@pytest.mark.parametrize(
    "opt",
    ["ndots:0", "ndots:15", "timeout:30", "attempts:5", "rotate", "edns0", "single-request",
     "single-request-reopen", "no-tld-query", "use-vc", "no-reload", "trust-ad", "inet6"],
)  # fmt: skip
def test_dns_opts_accepted(opt: str) -> None:
    assert ok("--dns-opt", opt).dns_opts == (opt,)


@pytest.mark.parametrize(
    ("opt", "message", "hint"),
    [
        ("ndots:16", '"ndots:16": ndots must be 0-15', "e.g. ndots:2"),
        ("timeout:0", '"timeout:0": timeout must be 1-30', "e.g. timeout:2"),
        ("attempts", "attempts needs a number: attempts:N", "e.g. attempts:2"),
        ("rotate:1", "rotate takes no value", "write rotate"),
        ("edns", '"edns" is not a resolv.conf option', "did you mean 'edns0'?"),
    ],
)
def test_dns_opts_refused(opt: str, message: str, hint: str) -> None:
    problem = bad_one(f"--dns-opt={opt}")
    assert (problem.key, problem.message, problem.hint) == ("dns-opts", message, hint)


def test_dns_search_domains() -> None:
    assert ok("--dns-search", "corp.example.com", "--dns-search", ".").dns_search == (
        "corp.example.com",
        ".",
    )
    for text in ("-corp.com", "a..b", "under_score.com", "x" * 64 + ".com", ""):
        assert "is not a domain name" in bad_one(f"--dns-search={text}").message


# -- numbers, booleans, names --------------------------------------------------------------------


def test_mtu_range() -> None:
    assert ok("--mtu", "68").mtu == 68
    assert bad_one("--mtu", "67").message == "67 is outside 68-65535"
    assert bad_one("--mtu", "65536").message == "65536 is outside 68-65535"
    assert bad_one("--mtu", "1.5k").message == '"1.5k" is not a whole number'


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("1", True), ("F", False), ("false", False)]
)
def test_docker_booleans(text: str, value: bool) -> None:
    assert ok(f"--icc={text}").icc is value
    assert ok("--icc", text).icc is value


def test_bare_boolean_flag_means_true_and_garbage_is_refused() -> None:
    assert ok("--ip-forward").ip_forward is True
    problem = bad_one("--ip-forward=yes")
    assert (problem.message, problem.hint) == ('"yes" is not a boolean', "use true or false")


def test_firewall_backend_and_bridge_names() -> None:
    assert ok("--firewall-backend", "iptables").firewall_backend == "iptables"
    assert bad_one("--firewall-backend", "nftable").hint == "did you mean 'nftables'?"
    assert ok("-b", "none").bridge == "none"
    backend = ("--firewall-backend", "iptables")
    assert ok(*backend, "--iptables-variant", "nft").iptables_variant == "nft"
    problem = bad_one(*backend, "--iptables-variant", "iptables-legacy")
    assert (problem.message, problem.hint) == (
        '"iptables-legacy" is not an iptables variant',
        "did you mean 'legacy'?",
    )
    assert "auto (the system's" in str(bad_one(*backend, "--iptables-variant", "x").hint)
    assert "is not an interface name" in bad_one("-b", "a-very-long-bridge0").message


def test_paths_and_host() -> None:
    config = ok("-H", "unix:///tmp/b.sock", "--data-root", "/tmp/d/", "--exec-root", "/tmp/e")
    assert (config.host, config.data_root, config.exec_root) == (
        "/tmp/b.sock",
        Path("/tmp/d"),
        Path("/tmp/e"),
    )
    assert config.paths.socket == Path("/tmp/b.sock")
    assert (
        bad_one("--data-root", "rel").message
        == '"rel" is a relative path; a daemon needs an absolute one'
    )
    assert "tcp:// sockets are not supported" in bad_one("-H", "tcp://0.0.0.0:2375").message


# -- pools ---------------------------------------------------------------------------------------


def test_pools_from_flags_replace_the_defaults() -> None:
    config = ok("--default-address-pool", "base=10.10.0.0/16,size=24")
    assert config.default_address_pools == ((IPv4Network("10.10.0.0/16"), 24),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base=10.10.0.0/16", "missing size"),
        ("size=24", "missing base"),
        ("base=10.10.0.0/16,size=24,x=1", 'unknown pool field "x": the fields are base and size'),
        ("base=10.10.0.0/16,size=abc", 'size: "abc" is not a whole number'),
        ("base=10.10.0.0/16,size=31", "size 31 leaves no address for containers in each network"),
        (
            "base=10.10.0.0/16,size=8",
            "size 8 is shorter than the base's prefix /16: size is the prefix length of each"
            " network cut from 10.10.0.0/16",
        ),
        (
            "base=10.10.0.1/16,size=24",
            "10.10.0.1/16 is not a network address: its network is 10.10.0.0/16",
        ),
    ],
)
def test_pool_flag_errors(text: str, message: str) -> None:
    assert bad_one("--default-address-pool", text).message == message


def test_pools_in_the_file(tmp_path: Path) -> None:
    problems = bad_file(
        tmp_path,
        {
            "default-address-pools": [
                {"base": "10.0.0.0/8", "size": "24"},
                {"bse": "10.1.0.0/16", "size": 24},
            ]
        },
    )
    assert [(p.message, p.hint) for p in problems] == [
        ('expected a number, got the string "24"', 'write "size": 24 without quotes'),
        ('pool 2 has no "base"', 'e.g. {"base": "10.10.0.0/16", "size": 24}'),
        ('unknown pool field "bse"', "did you mean 'base'?"),
    ]


# -- JSON types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message", "hint"),
    [
        ({"dns": "10.20.1.1"}, 'expected a list of strings, got the string "10.20.1.1"',
         'write "dns": ["10.20.1.1"]'),
        ({"icc": "false"}, 'expected true or false, got the string "false"',
         'write "icc": false without quotes'),
        ({"mtu": "1500"}, 'expected a number, got the string "1500"',
         'write "mtu": 1500 without quotes'),
        ({"mtu": True}, "expected a number, got true", None),
        ({"bip": None}, "expected a string, got null", "remove the key to use the default"),
        ({"ip": 0}, "expected a string, got the number 0", 'put it in double quotes: "ip": "0"'),
        ({"dns": [1]}, "item 1 must be a string, got the number 1", 'put it in double quotes: "1"'),
        ({"default-address-pools": {"base": "10.0.0.0/8", "size": 16}},
         'expected a list of {"base": CIDR, "size": N} objects, got an object',
         'wrap it in a list: "default-address-pools": [{"base": "10.0.0.0/8", "size": 16}]'),
        ({"default-address-pools": []}, "an empty list leaves no pool for new networks",
         "remove the key to keep the default pools"),
        ({"hosts": ["unix:///a.sock", "unix:///b.sock"]},
         "boxnetd listens on exactly one socket, got 2", 'e.g. "hosts": ["unix:///run/boxnet.sock"]'),
    ],
)  # fmt: skip
def test_json_types_name_the_expected_type(
    tmp_path: Path, content: dict[str, object], message: str, hint: str | None
) -> None:
    problems = bad_file(tmp_path, content)
    assert [(p.message, p.hint) for p in problems] == [(message, hint)]


def test_file_values_are_converted_like_flags(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    content = {
        "hosts": ["unix:///tmp/x.sock"], "debug": True, "mtu": 1400, "icc": False, "ip-masq": False,
        "dns-search": ["example.com"], "dns-opts": ["ndots:2"], "firewall-backend": "iptables",
        "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}], "bridge": "none",
    }  # fmt: skip
    path.write_text(json.dumps(content))
    config = resolve_config(["--config-file", str(path)], env={})
    assert (config.host, config.debug, config.mtu, config.icc) == ("/tmp/x.sock", True, 1400, False)
    assert (config.dns_search, config.dns_opts) == (("example.com",), ("ndots:2",))
    assert config.firewall_backend == "iptables" and config.bridge == "none"
    assert not config.has_default_network and config.default_bridge_address is None
    assert config.default_address_pools == ((IPv4Network("10.10.0.0/16"), 24),)
