"""Validators for names users choose, and id helpers.

Each validator returns the normalised value or raises InvalidArgument naming the rule broken.
Rules chosen where Docker has none (documented here so the CLI help and docs can quote them):
- network names: Docker's container-name charset, but 1 character is enough, at most 128
  (Docker accepts almost anything; names end up in `network ls` tables, JSON and log lines,
  so spaces and control characters are refused);
- hostnames (`-h`): RFC 1123, at most 63 bytes like Docker (the kernel's limit is 64);
- DNS names and aliases: RFC 1123 (labels of letters, digits and inner hyphens, <= 63 chars,
  name <= 253), case-insensitive, so they are returned lower-cased and without a trailing dot.
"""

from __future__ import annotations

import os
import re

from boxnet.parsing.netname import NETWORK_NAME_MAX as NETWORK_NAME_MAX  # re-exported
from boxnet.parsing.netname import validate_network_name as validate_network_name
from boxnet.parsing.refnames import IMAGE_NAME_MAX as IMAGE_NAME_MAX
from boxnet.parsing.refnames import bad_name as _bad
from boxnet.parsing.refnames import validate_container_name as validate_container_name
from boxnet.parsing.refnames import validate_image_name as validate_image_name

_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.ASCII | re.IGNORECASE)
_LABEL_UNDERSCORE_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?", re.ASCII | re.IGNORECASE)
_HEX_RE = re.compile(r"[0-9a-f]{1,64}", re.ASCII)
HOSTNAME_MAX = 63
IFNAME_MAX = 15  # IFNAMSIZ (16) minus the terminating NUL


def validate_dns_label(label: str) -> str:
    """One RFC 1123 label: letters, digits, inner hyphens, 1-63 characters; lower-cased."""
    if len(label) > 63 or not _LABEL_RE.fullmatch(label):
        raise _bad(
            "DNS label",
            label,
            "use 1-63 letters, digits or inner hyphens (no '_' or '.')",
        )
    return label.lower()


def validate_dns_name(name: str, *, kind: str = "DNS name", allow_underscore: bool = False) -> str:
    """An RFC 1123 name (e.g. a network alias); returned lower-cased, without a trailing dot.

    allow_underscore is for /etc/hosts entries: resolvers accept '_' there and Docker users
    rely on it (`--add-host my_db:10.0.0.5`), though DNS proper does not.
    """
    bare = name[:-1] if name.endswith(".") and name != "." else name
    label_re = _LABEL_UNDERSCORE_RE if allow_underscore else _LABEL_RE
    chars = (
        "letters, digits, '_' or inner hyphens"
        if allow_underscore
        else ("letters, digits or inner hyphens")
    )
    if not bare or len(bare) > 253:
        raise _bad(kind, name, "a name has 1-253 characters")
    for label in bare.split("."):
        if len(label) > 63 or not label_re.fullmatch(label):
            raise _bad(
                kind,
                name,
                f'label "{label}" must be 1-63 {chars}',
                "e.g. db or db.example.internal",
            )
    return bare.lower()


def validate_hostname(hostname: str) -> str:
    """A container hostname (`-h`): RFC 1123, at most 63 bytes; case is kept (the kernel does)."""
    if len(hostname) > HOSTNAME_MAX:
        raise _bad("hostname", hostname, f"at most {HOSTNAME_MAX} characters")
    validate_dns_name(hostname, kind="hostname")
    if hostname.endswith("."):
        raise _bad("hostname", hostname, "no trailing '.'")
    return hostname


def validate_ifname(name: str) -> str:
    """A kernel interface name (bridges), checked before any kernel call.

    The kernel (dev_valid_name) refuses empty names, '.', '..', names of 16+ bytes, '/', ':' and
    whitespace; '%' makes the kernel pick a number ("br%d"), so we refuse it too; control
    characters would garble `ip link` output.
    """
    size = len(name.encode("utf-8", "surrogatepass"))
    if not name or size > IFNAME_MAX:
        raise _bad("interface name", name, f"use 1-{IFNAME_MAX} bytes (the kernel's limit)")
    if name in (".", ".."):
        raise _bad("interface name", name, "'.' and '..' are not allowed")
    for char in name:
        if char in "/:%" or char.isspace() or not char.isprintable():
            raise _bad(
                "interface name",
                name,
                f"{char!r} is not allowed (no '/', ':', '%', whitespace or control characters)",
                "e.g. br-lan0",
            )
    return name


def is_unicast_mac(text: str) -> bool:
    """Six colon-separated hex pairs, the multicast bit clear (the kernel refuses the others on
    an interface)."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and p.isascii() and _is_hex(p) for p in parts):
        return False
    return not int(parts[0], 16) & 1


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in text)


def new_id() -> str:
    """A fresh 64-hex-digit id (256 random bits), like Docker's container and network ids."""
    # os.urandom is what secrets.token_hex uses; importing secrets costs ~10 ms of CLI startup.
    return os.urandom(32).hex()


def short_id(id_: str) -> str:
    """The 12-digit form shown in tables (Docker's TruncateID: drops an "algo:" prefix)."""
    return id_.split(":", 1)[-1][:12]


def is_id_prefix(text: str) -> bool:
    """True if text could be (a prefix of) an id: 1-64 lowercase hex digits."""
    return _HEX_RE.fullmatch(text) is not None
