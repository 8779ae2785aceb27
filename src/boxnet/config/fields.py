"""The table of daemon options: one row per daemon.json key, with its flags and its parser.

Flags and file keys share Docker's names, so one table drives the argparse parser, the file's key
check ("unknown key, did you mean …"), the flag-vs-file conflict check and the conversion to typed
values. A `Setting` is one option as the user wrote it, before conversion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from boxnet.config import clustervalues as cv
from boxnet.config import netvalues as nv
from boxnet.config import textvalues as tv


class Kind(Enum):
    STR = "a string"
    BOOL = "true or false"
    INT = "a number"
    LIST = "a list of strings"
    POOLS = 'a list of {"base": CIDR, "size": N} objects'
    HOSTS = "a list with one socket address"  # daemon.json `hosts`; the flag -H takes one


@dataclass(frozen=True)
class Field:
    key: str  # daemon.json key (also the `sources` key)
    attr: str  # DaemonConfig attribute
    flags: tuple[str, ...]  # option strings; the last one is the name used in messages
    kind: Kind
    parse: Callable[[Any], object] | None = None  # text (mtu: int) -> value, raises BadValue
    metavar: str | None = None
    help: str = ""

    @property
    def flag(self) -> str:
        return self.flags[-1]


FIELDS: tuple[Field, ...] = (
    Field("hosts", "host", ("-H", "--host"), Kind.HOSTS, tv.parse_host, "SOCKET",
          "API socket (default: $BOXNET_HOST or unix:///run/boxnet.sock)"),
    Field("data-root", "data_root", ("--data-root",), Kind.STR, tv.parse_abs_path, "DIR",
          "durable state (default /var/lib/boxnet)"),
    Field("exec-root", "exec_root", ("--exec-root",), Kind.STR, tv.parse_abs_path, "DIR",
          "runtime state (default /run/boxnet)"),
    Field("debug", "debug", ("-D", "--debug"), Kind.BOOL, help="debug logging"),
    Field("bridge", "bridge", ("-b", "--bridge"), Kind.STR, tv.parse_bridge, "NAME|none",
          "use this existing bridge for the default network; none = no default network"),
    Field("bip", "bip", ("--bip",), Kind.STR, nv.parse_bip, "CIDR",
          "default bridge address and mask, e.g. 10.10.10.1/24"),
    Field("fixed-cidr", "fixed_cidr", ("--fixed-cidr",), Kind.STR, nv.parse_ipv4_network, "CIDR",
          "allocate container addresses on the default bridge from this range only"),
    Field("default-gateway", "default_gateway", ("--default-gateway",), Kind.STR,
          nv.parse_ipv4_address, "IP", "containers' default gateway on the default bridge"),
    Field("ipv6", "ipv6", ("--ipv6",), Kind.BOOL, help="IPv6 on the default bridge too"),
    Field("fixed-cidr-v6", "fixed_cidr_v6", ("--fixed-cidr-v6",), Kind.STR,
          nv.parse_ipv6_network, "CIDR",
          "the default bridge's IPv6 subnet (with bip6: the part containers get addresses from)"),
    Field("default-gateway-v6", "default_gateway_v6", ("--default-gateway-v6",), Kind.STR,
          nv.parse_ipv6_address, "IP", "containers' IPv6 default gateway on the default bridge"),
    Field("bip6", "bip6", ("--bip6",), Kind.STR, nv.parse_bip6, "CIDR",
          "default bridge IPv6 address and prefix, e.g. fd00:1::1/64"),
    Field("dns", "dns", ("--dns",), Kind.LIST, nv.parse_ip_address, "IP",
          "DNS server (repeatable)"),
    Field("dns-search", "dns_search", ("--dns-search",), Kind.LIST, tv.parse_domain, "DOMAIN",
          "DNS search domain (repeatable)"),
    Field("dns-opts", "dns_opts", ("--dns-opt",), Kind.LIST, tv.parse_dns_opt, "OPT",
          "resolv.conf option (repeatable)"),
    Field("mtu", "mtu", ("--mtu",), Kind.INT, nv.check_mtu, "N", "default bridge MTU (1500)"),
    Field("ip", "ip", ("--ip",), Kind.STR, nv.parse_ipv4_address, "IP",
          "default host IP for published ports (0.0.0.0)"),
    Field("ip-masq", "ip_masq", ("--ip-masq",), Kind.BOOL, help="masquerade outgoing traffic"),
    Field("icc", "icc", ("--icc",), Kind.BOOL, help="allow traffic between containers"),
    Field("ip-forward", "ip_forward", ("--ip-forward",), Kind.BOOL, help="enable IP forwarding"),
    Field("iptables", "iptables", ("--iptables",), Kind.BOOL, help="manage the firewall at all"),
    Field("firewall-backend", "firewall_backend", ("--firewall-backend",), Kind.STR,
          tv.parse_firewall_backend, "nftables|iptables", "firewall backend (nftables)"),
    Field("iptables-variant", "iptables_variant", ("--iptables-variant",), Kind.STR,
          tv.parse_iptables_variant, "auto|nft|legacy",
          "iptables backend binaries: auto = the system's iptables-restore alternative (default),"
          " nft = iptables-nft-*, legacy = iptables-legacy-*"),
    Field("ui", "ui", ("--ui",), Kind.STR, nv.parse_ui_address, "[ADDR:]PORT",
          "also serve the read-only topology page over TCP (address 127.0.0.1 by default)"),
    Field("docker-plugin-socket", "docker_plugin_socket", ("--docker-plugin-socket",), Kind.STR,
          tv.parse_abs_path, "PATH",
          "also serve Docker's network plugin protocol (driver boxnet) on this unix socket,"
          " e.g. /run/docker/plugins/boxnet.sock (off unless asked)"),
    Field("default-address-pools", "default_address_pools", ("--default-address-pool",), Kind.POOLS,
          nv.parse_pool_text, "base=CIDR,size=N", "pool for new networks (repeatable)"),
    Field("insecure-registries", "insecure_registries", ("--insecure-registry",), Kind.LIST,
          tv.parse_registry, "HOST[:PORT]|CIDR",
          "registry to pull from over plain HTTP (repeatable)"),
    Field("cluster-store", "cluster_store", ("--cluster-store",), Kind.STR,
          cv.parse_cluster_store, "etcd://HOST:PORT[,...]",
          "etcd endpoints shared by the hosts of overlay networks"),
    Field("cluster-advertise", "cluster_advertise", ("--cluster-advertise",), Kind.STR,
          cv.parse_cluster_advertise, "ADDR",
          "this host's IPv4 address on the underlay, as other hosts reach it"),
    Field("cluster-store-opts", "cluster_store_opts", ("--cluster-store-opt",), Kind.LIST,
          cv.parse_cluster_store_opt, "KEY=VALUE",
          "TLS for etcd: kv.cacertfile, kv.certfile, kv.keyfile=PATH (repeatable)"),
)  # fmt: skip

BY_KEY = {f.key: f for f in FIELDS}

# Docker daemon.json keys boxnet does not implement: saying so beats "unknown key".
DOCKER_ONLY_KEYS = frozenset(
    [
        "ip6tables",
        "experimental",
        "userland-proxy",
        "userland-proxy-path",
        "live-restore",
        "log-driver",
        "log-level",
        "log-opts",
        "storage-driver",
        "storage-opts",
        "registry-mirrors",
        "max-concurrent-downloads",
        "default-runtime",
        "runtimes",
        "exec-opts",
        "cgroup-parent",
        "group",
        "labels",
        "features",
        "builder",
        "tls",
        "tlsverify",
        "tlscacert",
        "tlscert",
        "tlskey",
        "default-ulimits",
        "shutdown-timeout",
        "default-shm-size",
        "containerd",
        "pidfile",
        "ip-forward-no-drop",
        "userns-remap",
    ]
)


@dataclass(frozen=True)
class Setting:
    """One option as written: a flag's text (list of texts if repeatable) or a JSON value."""

    key: str
    value: object
    source: str  # "flag --bip" or "/etc/boxnet/daemon.json:2:1"
    locate: Callable[..., str]  # sub-path (list index, object field) -> source; flags: source
    from_file: bool

    def shown(self) -> str:
        """The value as the user typed it, for messages."""
        if isinstance(self.value, list) and not self.from_file:
            return " ".join(f"{self.source.removeprefix('flag ')}={v}" for v in self.value)
        if self.from_file:
            return json.dumps(self.value)
        return f"{self.source.removeprefix('flag ')}={self.value}"
