"""Rules between options (SPEC §2, FEATURES B9) and between the command line and daemon.json."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from boxnet.config import ConfigErrors, ConfigProblem, DaemonConfig, resolve_config


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "daemon.json"
        self.path.write_text("{}")

    def file(self, content: dict[str, object]) -> Env:
        self.path.write_text(json.dumps(content, indent=1))
        return self

    def ok(self, *argv: str) -> DaemonConfig:
        return resolve_config(["--config-file", str(self.path), *argv], env={})

    def bad(self, *argv: str) -> list[ConfigProblem]:
        with pytest.raises(ConfigErrors) as info:
            self.ok(*argv)
        return info.value.errors

    def bad_one(self, *argv: str) -> ConfigProblem:
        problems = self.bad(*argv)
        assert len(problems) == 1, [p.headline() for p in problems]
        return problems[0]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_key_both_as_flag_and_in_file_names_both_sources(env: Env) -> None:
    problem = env.file({"bip": "10.1.0.1/16"}).bad_one("--bip", "10.2.0.1/16")
    assert problem.headline() == (
        "flag --bip: bip: given both as a flag (--bip=10.2.0.1/16)"
        f" and in the file at {env.path}:2:2"
        ' ("10.1.0.1/16")'
    )
    assert problem.hint == "keep one of them: boxnetd does not guess which one should win"


def test_repeatable_flag_conflicts_with_its_file_key(env: Env) -> None:
    problem = env.file({"dns-opts": ["rotate"]}).bad_one("--dns-opt", "edns0")
    assert problem.key == "dns-opts"
    assert "given both as a flag (--dns-opt=edns0)" in problem.message


def test_bridge_and_bip_are_mutually_exclusive(env: Env) -> None:
    problem = env.bad_one("-b", "br0", "--bip", "10.0.0.1/24")
    assert (
        problem.headline() == 'flag --bip: bip: cannot be used together with bridge "br0" (flag -b)'
    )
    assert problem.hint == (
        "bip is the address of the bridge boxnetd creates, while bridge uses an existing bridge"
        " with its own address: remove one of the two"
    )
    problem = env.file({"bridge": "none"}).bad_one("--bip", "10.0.0.1/24")
    assert problem.message == f'cannot be used together with bridge "none" ({env.path}:2:2)'


def test_fixed_cidr_must_lie_inside_bip(env: Env) -> None:
    assert env.ok("--bip", "10.0.0.1/16", "--fixed-cidr", "10.0.8.0/24").fixed_cidr == IPv4Network(
        "10.0.8.0/24"
    )
    problem = env.bad_one("--bip", "10.0.0.1/24", "--fixed-cidr", "10.0.0.0/16")
    assert (
        problem.message
        == "10.0.0.0/16 is not inside the bip network 10.0.0.0/24 (bip 10.0.0.1/24 from flag --bip)"
    )


def test_fixed_cidr_without_bip_is_checked_against_the_default(env: Env) -> None:
    assert env.ok("--fixed-cidr", "172.17.1.0/24").fixed_cidr == IPv4Network("172.17.1.0/24")
    problem = env.bad_one("--fixed-cidr", "10.20.0.0/16")
    assert problem.message == (
        "10.20.0.0/16 is not inside the bip network 172.17.0.0/16"
        " (the default bip 172.17.0.1/16; bip is not set)"
    )
    assert problem.hint == (
        "fixed-cidr is the part of 172.17.0.0/16 containers get addresses from, e.g. 172.17.0.0/17;"
        " or move bip into it, e.g. bip 10.20.0.1/16"
    )


def test_with_an_existing_bridge_the_ranges_cannot_be_checked_yet(env: Env) -> None:
    config = env.ok("-b", "br0", "--fixed-cidr", "10.20.0.0/16", "--default-gateway", "10.20.0.254")
    assert config.bridge == "br0" and config.default_bridge_address is None


def test_bridge_none_makes_range_options_pointless(env: Env) -> None:
    problems = env.bad(
        "-b", "none", "--fixed-cidr", "172.17.1.0/24", "--default-gateway", "172.17.0.9"
    )
    assert [(p.key, p.message) for p in problems] == [
        ("fixed-cidr", 'has no effect: bridge is "none", so there is no default network'),
        ("default-gateway", 'has no effect: bridge is "none", so there is no default network'),
    ]


def test_default_gateway_must_be_a_host_inside_bip(env: Env) -> None:
    assert (
        str(env.ok("--bip", "10.0.0.1/24", "--default-gateway", "10.0.0.254").default_gateway)
        == "10.0.0.254"
    )
    problem = env.bad_one("--bip", "10.0.0.1/24", "--default-gateway", "10.0.1.1")
    assert (
        problem.message
        == "10.0.1.1 is not inside the bip network 10.0.0.0/24 (bip 10.0.0.1/24 from flag --bip)"
    )
    assert problem.hint == (
        "pick a router address inside 10.0.0.0/24, or leave default-gateway out:"
        " containers then route through the bridge address 10.0.0.1"
    )
    problem = env.bad_one("--bip", "10.0.0.1/24", "--default-gateway", "10.0.0.255")
    assert problem.message == "10.0.0.255 is the broadcast address of 10.0.0.0/24"


def test_an_invalid_bip_does_not_get_other_keys_blamed(env: Env) -> None:
    problems = env.bad(
        "--bip", "10.0.0.0/24", "--fixed-cidr", "10.9.0.0/24", "--default-gateway", "10.9.0.1"
    )
    assert [p.key for p in problems] == ["bip"]


def test_firewall_switches(env: Env) -> None:
    problem = env.bad_one("--iptables=false", "--icc=false")
    assert problem.headline() == (
        "flag --icc: icc: icc=false needs the firewall, but iptables is false (flag --iptables)"
    )
    problem = env.bad_one("--iptables=false", "--ip-masq")
    assert (
        problem.message
        == "ip-masq=true needs the firewall, but iptables is false (flag --iptables)"
    )
    config = env.ok("--iptables=false")
    assert config.ip_masq is False
    assert config.sources["ip-masq"] == "implied by iptables=false (flag --iptables)"


def test_iptables_variant_needs_the_iptables_backend(env: Env) -> None:
    config = env.ok("--firewall-backend", "iptables", "--iptables-variant", "legacy")
    assert (config.firewall_backend, config.iptables_variant) == ("iptables", "legacy")
    assert env.ok().iptables_variant == "auto"
    problem = env.bad_one("--iptables-variant", "legacy")
    assert problem.headline() == (
        "flag --iptables-variant: iptables-variant: has no effect: firewall-backend is nftables"
        " (the default); only the iptables backend runs iptables"
    )
    assert problem.hint == "set firewall-backend to iptables, or remove iptables-variant"
    env.file({"firewall-backend": "nftables", "iptables-variant": "nft"})
    problem = env.bad_one()
    assert problem.source == f"{env.path}:3:2"
    assert f"firewall-backend is nftables ({env.path}:2:2)" in problem.message
    # An invalid backend is reported once, the variant is not blamed for it as well.
    env.file({"firewall-backend": "pf", "iptables-variant": "legacy"})
    assert [p.key for p in env.bad()] == ["firewall-backend"]
    env.file({"firewall-backend": "iptables", "iptables-variant": "legacy"})
    assert env.ok().iptables_variant == "legacy"


def test_overlapping_pools(env: Env) -> None:
    problem = env.bad_one(
        "--default-address-pool", "base=10.0.0.0/8,size=24",
        "--default-address-pool", "base=10.1.0.0/16,size=24",
    )  # fmt: skip
    assert problem.message == "pool 2 (10.1.0.0/16) overlaps pool 1 (10.0.0.0/8)"


def test_unknown_keys(env: Env) -> None:
    problems = env.file(
        {"final-cidr": "x", "dns-opt": ["rotate"], "log-driver": "json", "zzz": 1}
    ).bad()
    assert [(p.key, p.message, p.hint) for p in problems] == [
        ("final-cidr", "unknown key, did you mean 'fixed-cidr'?",
         'rename "final-cidr" to "fixed-cidr"'),
        ("dns-opt", "unknown key, did you mean 'dns-opts'?", 'rename "dns-opt" to "dns-opts"'),
        ("log-driver", "a Docker option that boxnet does not implement",
         "remove it: boxnet refuses options it would silently ignore"),
        ("zzz", "unknown key", "known keys: bip, bip6, bridge, cluster-advertise, cluster-store,"
         " cluster-store-opts, data-root, debug, default-address-pools,"
         " default-gateway, default-gateway-v6, dns, dns-opts, dns-search, docker-plugin-socket,"
         " exec-root, firewall-backend, fixed-cidr, fixed-cidr-v6,"
         " hosts, icc, insecure-registries, ip, ip-forward, ip-masq, iptables, iptables-variant,"
         " ipv6, mtu, ui"),
    ]  # fmt: skip


def test_every_problem_is_collected_in_file_order(env: Env) -> None:
    env.file({
        "bip": "172.17.0.0/16", "mtu": 9, "dns": "1.1.1.1", "icc": "no",
        "fixed-cidr": "10.0.0.0/33", "firewall-backend": "pf",
    })  # fmt: skip
    problems = env.bad("--ip", "x")
    assert [(p.source.removeprefix(str(env.path)), p.key) for p in problems] == [
        ("flag --ip", "ip"),
        (":2:2", "bip"),
        (":3:2", "mtu"),
        (":4:2", "dns"),
        (":5:2", "icc"),
        (":6:2", "fixed-cidr"),
        (":7:2", "firewall-backend"),
    ]


def test_duplicate_keys_join_the_other_problems(env: Env) -> None:
    env.path.write_text('{\n"mtu": 1400,\n"mtu": 1500,\n"bip": "x"\n}')
    assert [p.message for p in env.bad()] == [
        "key given twice, first on line 2: JSON keeps only the last one",
        '"x" has no prefix length',
    ]


def test_insecure_registries(env: Env) -> None:
    assert env.ok("--insecure-registry", "localhost:5000").insecure_registries == (
        "localhost:5000",
    )
    problem = env.bad_one("--insecure-registry", "http://x:5000")
    assert "not a registry" in problem.message
    assert env.file({"insecure-registries": ["203.0.113.1:5000", "10.0.0.0/8"]}).ok(
    ).insecure_registries == ("203.0.113.1:5000", "10.0.0.0/8")  # fmt: skip


def test_cluster_store_options(env: Env) -> None:
    config = env.ok(
        "--cluster-store",
        "etcd://192.168.198.2:2379,etcd1,[2001:db8::1]:2380",
        "--cluster-advertise",
        "192.168.198.142",
    )
    assert config.cluster_store == (
        ("192.168.198.2", 2379),
        ("etcd1", 2379),
        ("2001:db8::1", 2380),
    )
    assert str(config.cluster_advertise) == "192.168.198.142"
    assert config.cluster_store_opts == ()
    from_file = env.file(
        {
            "cluster-store": "etcd://10.99.0.1:2379",
            "cluster-advertise": "10.99.0.2",
            "cluster-store-opts": ["kv.certfile=/etc/c.pem", "kv.keyfile=/etc/k.pem"],
        }
    ).ok()
    assert from_file.cluster_store == (("10.99.0.1", 2379),)
    assert from_file.cluster_store_opts == (
        ("kv.certfile", "/etc/c.pem"),
        ("kv.keyfile", "/etc/k.pem"),
    )


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("consul://10.0.0.1:8500", "only etcd is supported as the cluster store"),
        ("http://10.0.0.1:2379", "write the store as etcd://HOST:PORT"),
        ("10.0.0.1:2379", "is not an etcd URL: it must start with etcd://"),
        ("etcd://", "names no etcd endpoint"),
        ("etcd://10.0.0.1:2379/boxnet", "no path, query or user"),
        ("etcd://10.0.0.1:99999", '"99999" in "etcd://10.0.0.1:99999" is not a port (1-65535)'),
        ("etcd://10.0.0.1:", "has an empty port"),
        ("etcd://a,,b", "has an empty endpoint"),
        ("etcd://2001:db8::1", "an IPv6 address goes in brackets"),
        ("etcd://bad_host:2379", '"bad_host" in "etcd://bad_host:2379" is not a host name'),
        ("etcd://a:1,a:1", 'names "a:1" twice'),
    ],
)
def test_bad_cluster_store(env: Env, store: str, message: str) -> None:
    problem = env.bad_one("--cluster-store", store, "--cluster-advertise", "10.0.0.2")
    assert problem.key == "cluster-store"
    assert message in problem.message
    assert problem.hint


@pytest.mark.parametrize(
    ("advertise", "message", "hint"),
    [
        ("eth0:2376", "interface names are not supported", "give this host's address"),
        ("10.0.0.2:2376", "advertises an address, not a port", "write 10.0.0.2"),
        ("0.0.0.0", "cannot be advertised", "give this host's own address"),
        ("2001:db8::2", "the overlay's underlay is IPv4 only", "give an IPv4 address"),
    ],
)
def test_bad_cluster_advertise(env: Env, advertise: str, message: str, hint: str) -> None:
    problem = env.bad_one("--cluster-store", "etcd://10.0.0.1", "--cluster-advertise", advertise)
    assert problem.key == "cluster-advertise"
    assert message in problem.message
    assert problem.hint is not None and hint in problem.hint


def test_cluster_options_need_each_other(env: Env) -> None:
    problem = env.bad_one("--cluster-advertise", "10.0.0.2")
    assert problem.message == "has no effect without cluster-store"
    problem = env.bad_one("--cluster-store", "etcd://10.0.0.1")
    assert problem.message.startswith("needs cluster-advertise")
    problems = env.bad("--cluster-store-opt", "kv.cacertfile=/ca.pem")
    assert [p.key for p in problems] == ["cluster-store-opts"]
    assert problems[0].message == "has no effect without cluster-store"


@pytest.mark.parametrize(
    ("opts", "message", "hint"),
    [
        (["kv.cacert=/ca.pem"], 'unknown cluster store option "kv.cacert"', "kv.cacertfile"),
        (["kv.cacertfile"], "is not KEY=VALUE", "kv.cacertfile=/"),
        (["kv.cacertfile=ca.pem"], 'kv.cacertfile: "ca.pem" is a relative path', "write it"),
        (["kv.certfile=/c.pem"], "kv.certfile needs kv.keyfile", "give both"),
        (["kv.cacertfile=/a", "kv.cacertfile=/b"], "kv.cacertfile is given 2 times", "once"),
    ],
)
def test_bad_cluster_store_opts(env: Env, opts: list[str], message: str, hint: str) -> None:
    argv = ["--cluster-store", "etcd://10.0.0.1", "--cluster-advertise", "10.0.0.2"]
    for opt in opts:
        argv += ["--cluster-store-opt", opt]
    problem = env.bad_one(*argv)
    assert problem.key == "cluster-store-opts"
    assert message in problem.message
    assert problem.hint is not None and hint in problem.hint


def test_default_bridge_ipv6_keys(env: Env) -> None:
    config = env.ok("--ipv6", "--bip6", "fd00:1::1/64", "--fixed-cidr-v6", "fd00:1::/80",
                    "--default-gateway-v6", "fd00:1::fe")  # fmt: skip
    assert config.ipv6 and str(config.bip6) == "fd00:1::1/64"
    assert (
        str(config.fixed_cidr_v6) == "fd00:1::/80"
        and str(config.default_gateway_v6) == "fd00:1::fe"
    )
    problem = env.bad_one("--fixed-cidr-v6", "fd00:1::/64")
    assert problem.message == "has no effect: ipv6 is not set"
    assert problem.hint == "set ipv6 to true (--ipv6), or remove fixed-cidr-v6"
    problem = env.bad_one("--ipv6", "--bip6", "fd00:1::1/64", "--fixed-cidr-v6", "fd00:2::/80")
    assert problem.message == (
        "fd00:2::/80 is not inside the bip6 network fd00:1::/64"
        " (bip6 fd00:1::1/64 from flag --bip6)"
    )
    problem = env.bad_one("--ipv6", "--fixed-cidr-v6", "fd00:1::/64", "--default-gateway-v6",
                          "fd00:2::1")  # fmt: skip
    assert problem.key == "default-gateway-v6"
    assert problem.message == (
        "fd00:2::1 is not inside fixed-cidr-v6 fd00:1::/64 (from flag --fixed-cidr-v6)"
    )
    for key, value in (("--bip6", "fd00:1::1/127"), ("--fixed-cidr-v6", "fd00:1::/128")):
        problem = env.bad_one("--ipv6", key, value)
        assert problem.message == f"/{value.split('/')[1]} leaves no address for containers"
    problem = env.bad_one("--ipv6", "--bip6", "fd00:1::/64")
    assert "subnet-router anycast" in problem.message and problem.hint == (
        "use fd00:1::1/64, the usual gateway address"
    )
    problem = env.bad_one("-b", "br0", "--ipv6")
    assert problem.key == "ipv6" and "never changes the addresses" in problem.message
    problems = env.bad("-b", "none", "--ipv6", "--fixed-cidr-v6", "fd00:1::/64")
    assert [p.key for p in problems] == ["fixed-cidr-v6"]
