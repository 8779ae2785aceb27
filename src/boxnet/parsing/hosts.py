"""`--add-host HOST:IP`, parsed like Docker's opts.ValidateExtraHost.

Docker accepts `host:ip`, `host=ip` (tried first, so IPv6 needs no brackets), `host:[::1]` and the
special value `host-gateway` (the daemon substitutes the host's gateway address). Unlike Docker we
also check the hostname (RFC 1123 labels, '_' allowed as /etc/hosts resolvers accept it), because a
name with spaces or '#' would corrupt the container's /etc/hosts.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from boxnet.errors import InvalidArgument
from boxnet.parsing.names import validate_dns_name

TYPE_CHECKING = False  # importing typing costs ~2 ms of CLI start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Final, Literal

HOST_GATEWAY: Final = "host-gateway"
_FORMAT = "expected HOST:IP or HOST=IP, e.g. db:10.0.0.5, db=::1 or host.internal:host-gateway"


def parse_add_host(text: str) -> tuple[str, IPv4Address | IPv6Address | Literal["host-gateway"]]:
    """Return (hostname as typed, address or "host-gateway")."""
    host, sep, value = text.partition("=")
    if not sep:
        # Split on the first ':' only, so `host:::1` keeps the whole IPv6 address.
        host, sep, value = text.partition(":")
    if not sep or not host or ":" in host:
        raise InvalidArgument(f'invalid add-host "{text}": missing HOST:IP separator', _FORMAT)
    if not value:
        raise InvalidArgument(f'invalid add-host "{text}": no IP address after the host', _FORMAT)
    try:
        validate_dns_name(host, kind="hostname", allow_underscore=True)
    except InvalidArgument as err:
        raise InvalidArgument(f'invalid add-host "{text}": {err.message}', err.hint) from None
    if value == HOST_GATEWAY:
        return host, HOST_GATEWAY
    address = value[1:-1] if len(value) > 2 and value[0] == "[" and value[-1] == "]" else value
    try:
        if "%" in address:  # Python accepts IPv6 zones, Docker (Go's net.ParseIP) does not
            raise ValueError(address)
        return host, ip_address(address)
    except ValueError:
        raise InvalidArgument(
            f'invalid add-host "{text}": "{address}" is not an IP address',
            f"use an IPv4 or IPv6 address or {HOST_GATEWAY}",
        ) from None
