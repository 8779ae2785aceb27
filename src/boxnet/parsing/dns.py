"""`--dns`, `--dns-search`, `--dns-option`, and the resolv.conf and /etc/hosts we write.

Docker passes `--dns-option` through unchecked, so a typo ("ndot:2") silently does nothing inside
the container; we check options against glibc's resolv.conf(5) and name the bad one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

from boxnet.errors import InvalidArgument
from boxnet.parsing.names import validate_dns_name

IPAddress = IPv4Address | IPv6Address

# Options taking a number, with the range glibc honours (it silently clamps larger values).
VALUE_OPTIONS = {"ndots": (0, 15), "timeout": (1, 30), "attempts": (1, 5)}
FLAG_OPTIONS = (
    "rotate",
    "edns0",
    "single-request",
    "single-request-reopen",
    "no-tld-query",
    "use-vc",
    "no-reload",
    "trust-ad",
    "inet6",
    "debug",
    "no-aaaa",
)
_NUMBER_RE = re.compile(r"[0-9]{1,3}", re.ASCII)

# The lines Docker puts first in every container's /etc/hosts.
LOCALHOST_ENTRIES: tuple[tuple[str, ...], ...] = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost", "ip6-localhost", "ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)


def parse_dns(text: str) -> IPAddress:
    """A `--dns` nameserver: an IPv4 or IPv6 address, without port or brackets."""
    try:
        if "%" in text:  # resolv.conf takes zones, but Docker (Go's net.ParseIP) does not
            raise ValueError(text)
        return ip_address(text)
    except ValueError:
        pass
    if text.count(":") == 1 or text.startswith("["):
        hint = "resolv.conf nameservers always use port 53: give the address alone, e.g. 1.1.1.1"
    else:
        hint = "give an IPv4 or IPv6 address, e.g. 1.1.1.1 or 2606:4700:4700::1111"
    raise InvalidArgument(f'invalid --dns "{text}": not an IP address', hint)


def parse_dns_search(text: str) -> str:
    """A `--dns-search` domain, lower-cased without trailing dot; "." (no search list) is kept."""
    if text == ".":
        return text
    try:
        return validate_dns_name(text, kind="search domain")
    except InvalidArgument as err:
        raise InvalidArgument(
            f'invalid --dns-search "{text}": {err.message}',
            'give a domain such as example.internal, or "." for no search domains',
        ) from None


def parse_dns_option(text: str) -> str:
    """A `--dns-option` resolv.conf option such as `ndots:2` or `rotate`; returned normalised."""
    name, sep, value = text.partition(":")
    where = f'invalid --dns-option "{text}"'
    if name in VALUE_OPTIONS:
        low, high = VALUE_OPTIONS[name]
        if not sep or not value:
            raise InvalidArgument(f"{where}: {name} needs a value", f"e.g. {name}:{low + 1}")
        if not _NUMBER_RE.fullmatch(value) or not low <= int(value) <= high:
            raise InvalidArgument(
                f"{where}: {name} must be a number from {low} to {high}", f"e.g. {name}:{low + 1}"
            )
        return f"{name}:{int(value)}"
    if name in FLAG_OPTIONS:
        if sep:
            raise InvalidArgument(f"{where}: {name} takes no value", f"write just {name}")
        return name
    known = [*(f"{n}:N" for n in VALUE_OPTIONS), *FLAG_OPTIONS]
    import difflib  # only on this error path: it is not free to import

    close = difflib.get_close_matches(name, [k.partition(":")[0] for k in known], n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise InvalidArgument(f"{where}: unknown option {name!r}", hint + "known: " + ", ".join(known))


def _check_field(kind: str, value: str) -> str:
    # Values reach here already parsed; this stops a stray newline from adding resolver lines.
    if not value or any(c.isspace() for c in value):
        raise InvalidArgument(f"invalid {kind} {value!r}: empty or contains whitespace")
    return value


def render_resolv_conf(
    nameservers: Iterable[IPAddress | str],
    search: Sequence[str] = (),
    options: Sequence[str] = (),
) -> str:
    """A resolv.conf in Docker's layout; a search list of "." alone means no search line."""
    lines = [f"nameserver {_check_field('nameserver', str(ns))}" for ns in nameservers]
    domains = [_check_field("search domain", d) for d in search]
    if domains and domains != ["."]:
        lines.append("search " + " ".join(d for d in domains if d != "."))
    if options:
        lines.append("options " + " ".join(_check_field("DNS option", o) for o in options))
    return "".join(line + "\n" for line in lines)


def render_hosts(entries: Iterable[Sequence[IPAddress | str]] = (), *, ipv6: bool = True) -> str:
    """An /etc/hosts: Docker's localhost lines, then one `IP<TAB>name name...` line per entry.

    ipv6=False drops the IPv6 localhost lines, as Docker does for a container without IPv6.
    """
    lines = []
    for ip, *names in LOCALHOST_ENTRIES:
        if ipv6 or ":" not in ip:
            lines.append(f"{ip}\t{' '.join(names)}")
    for entry in entries:
        if len(entry) < 2:
            raise InvalidArgument(f"invalid hosts entry {tuple(map(str, entry))}: no name given")
        ip, *names = (_check_field("hosts entry", str(part)) for part in entry)
        lines.append(f"{ip}\t{' '.join(names)}")
    return "".join(line + "\n" for line in lines)
