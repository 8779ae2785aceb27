"""Parsers for the name-valued options: DNS options and search domains, bridge, backend, paths.

Same contract as `netvalues`: return the value or raise `BadValue`, nothing else.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from boxnet.config.model import (
    FIREWALL_BACKENDS,
    IPTABLES_VARIANTS,
    FirewallBackend,
    IptablesVariant,
)
from boxnet.config.netvalues import BadValue, q

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_IFNAME_MAX = 15  # IFNAMSIZ - 1
# resolv.conf `options` glibc understands; the numbers are glibc's own caps (resolv/res_init.c).
_NUMERIC_DNS_OPTS = {"ndots": (0, 15), "timeout": (1, 30), "attempts": (1, 5)}
_FLAG_DNS_OPTS = (
    "rotate",
    "edns0",
    "single-request",
    "single-request-reopen",
    "no-tld-query",
    "use-vc",
    "no-reload",
    "trust-ad",
    "inet6",
)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def parse_dns_opt(text: str) -> str:
    name, colon, number = text.partition(":")
    if name in _NUMERIC_DNS_OPTS:
        low, high = _NUMERIC_DNS_OPTS[name]
        example = f"{name}:{max(low, min(high, 2))}"
        if not colon or not re.fullmatch(r"[0-9]{1,3}", number, re.ASCII):
            raise BadValue(f"{name} needs a number: {name}:N", f"e.g. {example}")
        if not low <= int(number) <= high:
            raise BadValue(f"{q(text)}: {name} must be {low}-{high}", f"e.g. {example}")
        return text
    if text in _FLAG_DNS_OPTS:
        return text
    if name in _FLAG_DNS_OPTS:
        raise BadValue(f"{name} takes no value", f"write {name}")
    known = [f"{n}:N" for n in _NUMERIC_DNS_OPTS] + list(_FLAG_DNS_OPTS)
    guess = did_you_mean(name, [*_NUMERIC_DNS_OPTS, *_FLAG_DNS_OPTS])
    hint = f"did you mean '{guess}'?" if guess else "known options: " + ", ".join(known)
    raise BadValue(f"{q(text)} is not a resolv.conf option", hint)


def parse_domain(text: str) -> str:
    """A DNS search domain; "." alone means "no search domains" (as in Docker)."""
    if text == ".":
        return text
    name = text.removesuffix(".")
    if not name or len(name) > 253:
        raise BadValue(f"{q(text)} is not a domain name (1-253 characters)", "e.g. example.com")
    for label in name.split("."):
        if not _LABEL.fullmatch(label):
            raise BadValue(
                f"{q(text)} is not a domain name: label {q(label)} is not 1-63 letters, digits"
                " or '-' (not at either end)",
                "e.g. corp.example.com",
            )
    return text


def parse_bridge(text: str) -> str:
    """An existing bridge's interface name, or "none" for no default network."""
    if text == "none":
        return text
    bad = (
        not text
        # surrogatepass: argv may carry undecodable bytes as lone surrogates (PEP 383)
        or len(text.encode("utf-8", "surrogatepass")) > _IFNAME_MAX
        or text in (".", "..")
        or any(c in text for c in "/:")
        or any(c.isspace() for c in text)
    )
    if bad:
        raise BadValue(
            f"{q(text)} is not an interface name: 1-15 bytes, no '/', ':' or spaces",
            'give an existing bridge such as "br0", or "none" for no default network',
        )
    return text


def parse_firewall_backend(text: str) -> FirewallBackend:
    for backend in FIREWALL_BACKENDS:
        if text == backend:
            return backend
    guess = did_you_mean(text, FIREWALL_BACKENDS)
    hint = f"did you mean '{guess}'?" if guess else "use nftables (default) or iptables"
    raise BadValue(f"{q(text)} is not a firewall backend", hint)


def parse_iptables_variant(text: str) -> IptablesVariant:
    for variant in IPTABLES_VARIANTS:
        if text == variant:
            return variant
    # "iptables-legacy" is what a user who knows the binaries types: name the word we want.
    guess = did_you_mean(text.removeprefix("iptables-"), IPTABLES_VARIANTS)
    hint = (
        f"did you mean '{guess}'?"
        if guess
        else "use auto (the system's iptables-restore), nft (iptables-nft-restore) or legacy"
        " (iptables-legacy-restore)"
    )
    raise BadValue(f"{q(text)} is not an iptables variant", hint)


def parse_abs_path(text: str) -> Path:
    if not text or "\0" in text:
        raise BadValue(f"{q(text)} is not a path")
    if not os.path.isabs(text):
        hint = f"write it in full, e.g. {os.path.abspath(text)}"
        raise BadValue(f"{q(text)} is a relative path; a daemon needs an absolute one", hint)
    return Path(os.path.normpath(text))


def parse_host(text: str) -> str:
    """`unix:///run/boxnet.sock` or `/run/boxnet.sock` -> the socket file path."""
    scheme, sep, rest = text.partition("://")
    if sep and scheme != "unix":
        hint = "boxnetd serves its API on a unix socket only, e.g. unix:///run/boxnet.sock"
        raise BadValue(f"{q(text)}: {scheme}:// sockets are not supported", hint)
    try:
        return str(parse_abs_path(rest if sep else text))
    except BadValue as err:
        raise BadValue(f"{q(text)} is not a socket path: {err.message}", err.hint) from None


_REGISTRY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?")


def parse_registry(text: str) -> str:
    """An insecure registry as Docker names them: host[:port] or a CIDR (no scheme)."""
    import ipaddress

    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            pass
        raise BadValue(
            f"{q(text)} is not a registry: expected HOST[:PORT] or a CIDR (no http://)",
            "e.g. 203.0.113.1:5000 or 10.0.0.0/8",
        )
    if not _REGISTRY.fullmatch(text):
        raise BadValue(f"{q(text)} is not a registry: expected HOST[:PORT] or a CIDR",
                       "e.g. 203.0.113.1:5000")  # fmt: skip
    return text
