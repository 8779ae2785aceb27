"""Parsers for the cluster-store options (SPEC §3b): where etcd is, what this host advertises, TLS.

Same contract as `netvalues`: return the value or raise `BadValue`, nothing else.

- cluster-store: `etcd://HOST[:PORT][,HOST[:PORT]...]` (port 2379 when left out); only etcd is
  supported (Docker's consul:// and zk:// are refused by name).
- cluster-advertise: this host's IPv4 underlay address (VXLAN's local address). Docker also takes
  `IFACE:PORT`; boxnet needs an address, not a port, so both forms are refused with the fix.
- cluster-store-opts: `kv.cacertfile=PATH`, `kv.certfile=PATH`, `kv.keyfile=PATH` (Docker's keys).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, ip_address

from boxnet.config.netvalues import BadValue, q
from boxnet.config.textvalues import did_you_mean, parse_abs_path

ETCD_SCHEME = "etcd://"
DEFAULT_ETCD_PORT = 2379
STORE_OPT_KEYS = ("kv.cacertfile", "kv.certfile", "kv.keyfile")
_OTHER_STORES = ("consul://", "zk://", "boltdb://", "http://", "https://")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", re.ASCII)
_STORE_EXAMPLE = "e.g. etcd://192.168.198.2:2379 or etcd://10.0.0.1:2379,10.0.0.2:2379"

Endpoint = tuple[str, int]  # (host, port); an IPv6 host without brackets


def parse_cluster_store(text: str) -> tuple[Endpoint, ...]:
    """etcd://HOST[:PORT][,...] -> ((host, port), ...), in the order given, without duplicates."""
    if not text.startswith(ETCD_SCHEME):
        scheme = next((s for s in _OTHER_STORES if text.startswith(s)), None)
        if scheme in ("http://", "https://"):
            raise BadValue(f"{q(text)}: write the store as etcd://HOST:PORT", _STORE_EXAMPLE)
        if scheme is not None:
            raise BadValue(
                f"{q(text)}: only etcd is supported as the cluster store", _STORE_EXAMPLE
            )
        raise BadValue(f"{q(text)} is not an etcd URL: it must start with etcd://", _STORE_EXAMPLE)
    rest = text[len(ETCD_SCHEME) :]
    if "/" in rest or "?" in rest or "@" in rest:
        raise BadValue(
            f"{q(text)}: only HOST:PORT pairs may follow etcd:// (no path, query or user)",
            _STORE_EXAMPLE,
        )
    if not rest:
        raise BadValue(f"{q(text)} names no etcd endpoint", _STORE_EXAMPLE)
    endpoints: list[Endpoint] = []
    for part in rest.split(","):
        endpoint = _parse_endpoint(text, part)
        if endpoint in endpoints:
            raise BadValue(f"{q(text)} names {q(part)} twice", "list each etcd member once")
        endpoints.append(endpoint)
    return tuple(endpoints)


def _parse_endpoint(text: str, part: str) -> Endpoint:
    if not part:
        raise BadValue(f"{q(text)} has an empty endpoint", "separate endpoints by single commas")
    host, port_text = part, ""
    if part.startswith("["):
        close = part.find("]")
        if close < 0:
            raise BadValue(
                f"{q(part)} in {q(text)} has no closing ]", "e.g. etcd://[2001:db8::1]:2379"
            )
        host, after = part[1:close], part[close + 1 :]
        if after and not after.startswith(":"):
            raise BadValue(f"{q(part)} in {q(text)}: expected :PORT after ]")
        port_text = after[1:]
        if not isinstance(_ip_or_none(host), IPv6Address):
            raise BadValue(f"{q(host)} in {q(text)} is not an IPv6 address")
    elif part.count(":") == 1:
        host, port_text = part.split(":")
    elif part.count(":") > 1:
        raise BadValue(
            f"{q(part)} in {q(text)}: an IPv6 address goes in brackets", "e.g. [2001:db8::1]:2379"
        )
    if not host or not (_ip_or_none(host) is not None or _HOSTNAME.fullmatch(host)):
        raise BadValue(f"{q(host)} in {q(text)} is not a host name or IP address", _STORE_EXAMPLE)
    if port_text == "" and part.endswith(":"):
        raise BadValue(f"{q(part)} in {q(text)} has an empty port", "e.g. :2379, or leave it out")
    port = DEFAULT_ETCD_PORT
    if port_text:
        if not re.fullmatch(r"[0-9]{1,5}", port_text, re.ASCII) or not 1 <= int(port_text) <= 65535:
            raise BadValue(f"{q(port_text)} in {q(text)} is not a port (1-65535)", "etcd's is 2379")
        port = int(port_text)
    return host, port


def _ip_or_none(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def parse_cluster_advertise(text: str) -> IPv4Address:
    """This host's IPv4 address on the underlay: VXLAN packets leave from it."""
    address = _ip_or_none(text)
    if isinstance(address, IPv4Address):
        if address.is_unspecified or address.is_multicast or address.is_loopback:
            raise BadValue(
                f"{q(text)} cannot be advertised: other hosts must reach this host at it",
                "give this host's own address on the network the hosts share",
            )
        return address
    host, sep, _ = text.rpartition(":")
    if sep and isinstance(_ip_or_none(host), IPv4Address):
        raise BadValue(
            f"{q(text)}: boxnet advertises an address, not a port (VXLAN uses UDP 4789)",
            f"write {host}",
        )
    if isinstance(address, IPv6Address):
        raise BadValue(f"{q(text)}: the overlay's underlay is IPv4 only", "give an IPv4 address")
    raise BadValue(
        f"{q(text)} is not an IPv4 address (interface names are not supported)",
        "give this host's address on the network the hosts share, e.g. 192.168.198.142",
    )


def parse_cluster_store_opt(text: str) -> tuple[str, str]:
    """kv.cacertfile|kv.certfile|kv.keyfile=PATH -> (key, absolute path)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise BadValue(f"{q(text)} is not KEY=VALUE", "e.g. kv.cacertfile=/etc/boxnet/etcd-ca.pem")
    if key not in STORE_OPT_KEYS:
        guess = did_you_mean(key, STORE_OPT_KEYS)
        hint = f"did you mean {q(guess)}?" if guess else "the keys are " + ", ".join(STORE_OPT_KEYS)
        raise BadValue(f"unknown cluster store option {q(key)}", hint)
    try:
        return key, str(parse_abs_path(value))
    except BadValue as err:
        raise BadValue(f"{key}: {err.message}", err.hint) from None
