"""Parsers for the network-valued options: addresses, CIDRs, bip, pools, booleans, numbers.

Each takes the text a user wrote and returns a typed value or raises `BadValue` (what is wrong
and the fix), never anything else: the resolver adds the key and the source. The grammar is
stricter than Python's `ipaddress` on purpose: `10.0.0.1/255.255.255.0`, spaces, non-ASCII digits
and host bits in a network are refused rather than silently reinterpreted.
"""

from __future__ import annotations

import json
import re
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)

_DIGITS = re.compile(r"[0-9]{1,6}", re.ASCII)  # bounded: int() of huge strings is slow or refused
# The spellings Go's strconv.ParseBool accepts, which is what Docker's boolean flags take.
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}
MAX_BRIDGE_PREFIX = 30  # a /31 or /32 leaves no address for a container next to the gateway
# IPv6: the subnet-router anycast address (::0) and the gateway (::1) are taken, so a /127 or
# /128 leaves no address for a container.
MAX_BRIDGE_PREFIX6 = 126


def q(text: str) -> str:
    """Quote a value the JSON way, as the user would write it in daemon.json."""
    return json.dumps(text, ensure_ascii=False)


class BadValue(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_bool_text(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"{q(text)} is not a boolean", "use true or false")


def parse_uint_text(text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise BadValue(f"{q(text)} is not a whole number")
    return int(text)


def parse_ipv4_address(text: str) -> IPv4Address:
    if ":" in text:
        raise BadValue(f"{q(text)} is an IPv6 address; this option takes IPv4", None)
    try:
        return IPv4Address(text)
    except ValueError:
        raise BadValue(
            f"{q(text)} is not an IPv4 address", "write four numbers 0-255, e.g. 10.20.1.1"
        ) from None


def parse_ui_address(text: str) -> tuple[IPv4Address, int]:
    """`boxnetd --ui [ADDR:]PORT`: where the read-only topology page listens (127.0.0.1 when no
    address is given: the page shows the host's layout, not something to publish by accident)."""
    addr, sep, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadValue(f"{q(text)} has no port", "write ADDR:PORT or PORT, e.g. 127.0.0.1:8480")
    return (parse_ipv4_address(addr) if sep and addr else IPv4Address("127.0.0.1")), int(port)


def parse_ip_address(text: str) -> IPv4Address | IPv6Address:
    try:
        return ip_address(text)
    except ValueError:
        raise BadValue(
            f"{q(text)} is not an IP address", "e.g. 10.20.1.1 or 2001:db8::53"
        ) from None


def parse_ipv4_cidr(text: str) -> tuple[IPv4Address, int]:
    """`A.B.C.D/N` with 0 <= N <= 32, nothing else."""
    address, slash, prefix = text.partition("/")
    if not slash:
        example = f"{text}/24" if _looks_ipv4(text) else "10.20.0.1/24"
        raise BadValue(f"{q(text)} has no prefix length", f"add the mask, e.g. {example}")
    try:
        addr = parse_ipv4_address(address)
    except BadValue as err:
        raise BadValue(f"invalid CIDR {q(text)}: {err.message}", err.hint) from None
    if not (_DIGITS.fullmatch(prefix) and int(prefix) <= 32):
        hint = f"an IPv4 prefix length is /0 to /32, e.g. {addr}/24"
        if "." in prefix:
            hint = f"write the mask as a prefix length: {addr}/24, not {addr}/255.255.255.0"
        raise BadValue(
            f"invalid CIDR {q(text)}: /{prefix} is not a valid IPv4 prefix length (0-32)", hint
        )
    return addr, int(prefix)


def _looks_ipv4(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True


def parse_ipv4_network(text: str) -> IPv4Network:
    """A network CIDR: host bits must be zero (`10.20.0.5/16` is refused, not truncated)."""
    addr, prefix = parse_ipv4_cidr(text)
    net = IPv4Network((addr, prefix), strict=False)
    if net.network_address != addr:
        raise BadValue(f"{text} is not a network address: its network is {net}", f"write {net}")
    return net


def parse_bip(text: str) -> IPv4Interface:
    """The default bridge's own address plus mask: a usable host address of its network."""
    addr, prefix = parse_ipv4_cidr(text)
    iface = IPv4Interface((addr, prefix))
    net = iface.network
    if prefix > MAX_BRIDGE_PREFIX:
        hint = f"use /{MAX_BRIDGE_PREFIX} or shorter, e.g. {addr}/24"
        raise BadValue(f"/{prefix} leaves no address for containers", hint)
    gateway = f"{next(net.hosts())}/{prefix}"
    if addr == net.network_address:
        msg = f"{text} is the network address, not a host address"
        hint = f"use {gateway}, the gateway address, not the network address {net}"
        raise BadValue(msg, hint)
    if addr == net.broadcast_address:
        msg = f"{text} is the broadcast address of {net}, not a host address"
        raise BadValue(msg, f"use {gateway}, the usual gateway address of {net}")
    kind = _special_kind(addr)
    if kind:
        raise BadValue(
            f"{addr} is a {kind} address and cannot be a bridge address", "e.g. 10.20.0.1/16"
        )
    return iface


def _special_kind(addr: IPv4Address) -> str | None:
    if addr.is_loopback:
        return "loopback"
    if addr.is_multicast:
        return "multicast"
    if addr.is_reserved:
        return "reserved (240.0.0.0/4)"
    if addr.is_link_local:
        return "link-local"
    return None


def check_pool(base_text: str, size: int) -> tuple[IPv4Network | IPv6Network, int]:
    """One default-address-pools entry: networks of prefix `size` are cut from `base` (IPv4, or
    IPv6 for the IPv6 family of --ipv6 networks, e.g. fd00:db8::/48 with size 64)."""
    if ":" in base_text:
        return _check_pool6(base_text, size)
    base = parse_ipv4_network(base_text)
    if size < base.prefixlen:
        msg = (
            f"size {size} is shorter than the base's prefix /{base.prefixlen}: size is the prefix"
            f" length of each network cut from {base}"
        )
        example = max(base.prefixlen, 24)
        hint = f"use a size from {base.prefixlen} to {MAX_BRIDGE_PREFIX}, e.g. {example}"
        raise BadValue(msg, hint)
    if size > MAX_BRIDGE_PREFIX:
        hint = f"use a size of at most {MAX_BRIDGE_PREFIX}, e.g. {max(base.prefixlen, 24)}"
        raise BadValue(f"size {size} leaves no address for containers in each network", hint)
    return base, size


def _check_pool6(base_text: str, size: int) -> tuple[IPv6Network, int]:
    addr, prefix = parse_ipv6_cidr(base_text)
    base = IPv6Network((addr, prefix), strict=False)
    if base.network_address != addr:
        msg = f"{base_text} is not a network address: its network is {base}"
        raise BadValue(msg, f"write {base}")
    if addr.is_multicast or addr.is_loopback or addr.is_link_local:
        raise BadValue(f"{base} cannot hold bridge networks", "e.g. fd00:db8::/48 with size 64")
    if not base.prefixlen <= size <= MAX_BRIDGE_PREFIX6:
        what = "shorter than the base's prefix" if size < base.prefixlen else "too long"
        raise BadValue(
            f"size {size} is {what}: each network cut from {base} is a /{size}",
            f"use a size from {base.prefixlen} to {MAX_BRIDGE_PREFIX6}, e.g. 64",
        )
    return base, size


def parse_pool_text(text: str) -> tuple[IPv4Network | IPv6Network, int]:
    """The flag form `base=CIDR,size=N` of one default address pool."""
    fields: dict[str, str] = {}
    example = "base=10.10.0.0/16,size=24"
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if not eq:
            raise BadValue(f"{q(part)} is not KEY=VALUE", f"write {example}")
        if name not in ("base", "size"):
            raise BadValue(
                f"unknown pool field {q(name)}: the fields are base and size", f"write {example}"
            )
        if name in fields:
            raise BadValue(f"{name} is given twice", f"write {example}")
        fields[name] = value
    missing = [name for name in ("base", "size") if name not in fields]
    if missing:
        raise BadValue(f"missing {' and '.join(missing)}", f"write {example}")
    try:
        size = parse_uint_text(fields["size"])
    except BadValue as err:
        raise BadValue(f"size: {err.message}", "size is a prefix length, e.g. 24") from None
    return check_pool(fields["base"], size)


def parse_ipv6_address(text: str) -> IPv6Address:
    if "." in text and ":" not in text:
        raise BadValue(f"{q(text)} is an IPv4 address; this option takes IPv6", None)
    try:
        if "%" in text:
            raise ValueError(text)  # a zone has no meaning in a configuration
        return IPv6Address(text)
    except ValueError:
        raise BadValue(f"{q(text)} is not an IPv6 address", "e.g. 2001:db8:1::1") from None


def parse_ipv6_cidr(text: str) -> tuple[IPv6Address, int]:
    """`ADDR/N` with 0 <= N <= 128, nothing else."""
    address, slash, prefix = text.partition("/")
    if not slash:
        raise BadValue(f"{q(text)} has no prefix length", f"add it, e.g. {address}/64")
    try:
        addr = parse_ipv6_address(address)
    except BadValue as err:
        raise BadValue(f"invalid CIDR {q(text)}: {err.message}", err.hint) from None
    if not (_DIGITS.fullmatch(prefix) and int(prefix) <= 128):
        raise BadValue(
            f"invalid CIDR {q(text)}: /{prefix} is not a valid IPv6 prefix length (0-128)",
            f"e.g. {addr}/64",
        )
    return addr, int(prefix)


def _check_prefix6(addr: IPv6Address, prefix: int) -> None:
    if prefix > MAX_BRIDGE_PREFIX6:
        hint = f"use /{MAX_BRIDGE_PREFIX6} or shorter, e.g. {addr}/64"
        raise BadValue(f"/{prefix} leaves no address for containers", hint)


def parse_ipv6_network(text: str) -> IPv6Network:
    """An IPv6 network for containers (fixed-cidr-v6): host bits zero, room for containers."""
    addr, prefix = parse_ipv6_cidr(text)
    net = IPv6Network((addr, prefix), strict=False)
    if net.network_address != addr:
        raise BadValue(f"{text} is not a network address: its network is {net}", f"write {net}")
    _check_prefix6(addr, prefix)
    if addr.is_multicast or addr.is_loopback or addr.is_link_local:
        raise BadValue(f"{net} cannot be a bridge network", "e.g. a unique local fd00::/8 /64")
    return net


def parse_bip6(text: str) -> IPv6Interface:
    """The default bridge's own IPv6 address plus prefix (bip6, Docker 28)."""
    addr, prefix = parse_ipv6_cidr(text)
    _check_prefix6(addr, prefix)
    iface = IPv6Interface((addr, prefix))
    net = iface.network
    if addr == net.network_address:
        raise BadValue(
            f"{text} is the subnet-router anycast address of {net}, not a host address",
            f"use {net.network_address + 1}/{prefix}, the usual gateway address",
        )
    for kind, special in (
        ("loopback", addr.is_loopback),
        ("multicast", addr.is_multicast),
        ("link-local", addr.is_link_local),
        ("unspecified", addr.is_unspecified),
    ):
        if special:
            raise BadValue(
                f"{addr} is a {kind} address and cannot be a bridge address", "e.g. fd00:1::1/64"
            )
    return iface


def check_mtu(mtu: int) -> int:
    if not 68 <= mtu <= 65535:
        raise BadValue(
            f"{mtu} is outside 68-65535",
            "1500 is right for Ethernet; use less on VPN or cloud hosts",
        )
    return mtu
