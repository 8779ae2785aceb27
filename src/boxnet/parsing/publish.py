"""Docker's `-p/--publish` and `--expose` syntax, and its Engine API JSON form.

The grammar follows Docker's `nat.ParsePortSpec` (github.com/docker/go-connections/nat):
`[IP:][HOSTPORT:]CPORT[/PROTO]` where HOSTPORT and CPORT may be ranges `START-END`, IP may be an
IPv6 address in brackets (`[::1]:8080:80`) or, as Docker allows, bare (`::1:8080:80`: the last two
colon-separated fields are the ports). Deliberate differences, each turning a likely typo into an
error Docker would silently accept:
- port 0 is rejected (Docker maps `0:80` to a random port; `80` already says that);
- `:80` (empty host port with no IP) is rejected; `80` or `IP::80` say "any host port";
- `1-2-3` is rejected (Docker reads it as `1-2`), as are signs, spaces and non-ASCII digits.

The daemon validates API JSON with `from_api`, which shares the checks (and messages) of
`parse_publish`, so a request from the Docker CLI or SDK fails the same way as the boxnet CLI.
"""

from __future__ import annotations

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # `run -p` imports this module: no typing, re or ipaddress (~5 ms, #20)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from ipaddress import IPv4Address, IPv6Address

    IPAddress = IPv4Address | IPv6Address

PROTOCOLS = ("tcp", "udp", "sctp")
PUBLISH_FORMAT = "[IP:][HOSTPORT:]CONTAINERPORT[/PROTO], e.g. 8080:80, 127.0.0.1::80, 53:53/udp"


def _digits(text: str) -> bool:
    """[0-9]+ in ASCII: Python's str.isdigit and int() also take other digits, Go's ParseUint
    does not."""
    return text.isascii() and text.isdigit()


class _Bad(Exception):
    """A reason without context; public entry points prefix what was being parsed."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class PortSpec:
    """One published port (or container port range) of a container.

    host_port_start/end are None for "any free host port" (ephemeral); a host range with a single
    container port means "any free port of that range".

    A plain class, not a dataclass: `boxnet run -p` imports this module, and `dataclasses` pulls
    in inspect/ast/tokenize, ~6 ms of every CLI call (issue #20). Immutable by convention; equal
    and hashable by value.
    """

    __slots__ = (
        "container_port_end",
        "container_port_start",
        "host_ip",
        "host_port_end",
        "host_port_start",
        "proto",
    )  # fmt: skip

    def __init__(
        self,
        host_ip: IPAddress | None,
        host_port_start: int | None,
        host_port_end: int | None,
        container_port_start: int,
        container_port_end: int,
        proto: str = "tcp",
    ) -> None:
        self.host_ip = host_ip
        self.host_port_start = host_port_start
        self.host_port_end = host_port_end
        self.container_port_start = container_port_start
        self.container_port_end = container_port_end
        self.proto = proto
        self._check()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortSpec) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"PortSpec({inner})"

    def _check(self) -> None:
        # Programmer errors only: every parser validates user input before building a PortSpec.
        if (self.host_port_start is None) != (self.host_port_end is None):
            raise ValueError("host_port_start and host_port_end must both be set or both be None")
        if self.proto not in PROTOCOLS:
            raise ValueError(f"bad proto {self.proto!r}")
        ranges = [(self.host_port_start, self.host_port_end)]
        ranges.append((self.container_port_start, self.container_port_end))
        for start, end in ranges:
            if start is not None and end is not None and not 1 <= start <= end <= 65535:
                raise ValueError(f"bad port range {start}-{end}")
        if self.host_port_start is not None and self.host_port_end is not None:
            crange = self.container_port_end - self.container_port_start
            if crange and crange != self.host_port_end - self.host_port_start:
                raise ValueError("host and container ranges differ in length")


def _number(digits: str, what: str) -> int:
    significant = digits.lstrip("0")
    # Check the length first: int() of a huge digit string is slow (or refused by Python).
    value = int(significant) if 0 < len(significant) <= 5 else (0 if not significant else 1 << 17)
    if not 1 <= value <= 65535:
        hint = (
            "leave the host port out (e.g. -p 80) to get a free one"
            if what == "host port"
            else None
        )
        raise _Bad(f"{what} {digits} is out of range (1-65535)", hint)
    return value


def _port_range(text: str, what: str) -> tuple[int, int]:
    if _digits(text):
        port = _number(text, what)
        return port, port
    first, dash, last = text.partition("-")
    if not (dash and _digits(first) and _digits(last)):
        raise _Bad(f'{what} "{text}" is not a port number or range', "e.g. 80 or 8000-8010")
    start, end = _number(first, what), _number(last, what)
    if start > end:
        raise _Bad(f"{what} range {text} is reversed (start > end)", f"write {end}-{start}")
    return start, end


def _proto_port(text: str) -> tuple[str, str]:
    """Split `PORT[/PROTO]` like Docker's SplitProtoPort, but validate the protocol."""
    port, _, proto = text.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOCOLS:
        raise _Bad(f'unknown protocol "{proto}"', "use tcp, udp or sctp")
    return port, proto


def _ip(text: str) -> IPAddress:
    from ipaddress import ip_address

    # Python accepts IPv6 zones ("fe80::1%eth0"); Go's net.ParseIP (Docker) does not.
    try:
        if "%" in text:
            raise ValueError(text)
        return ip_address(text)
    except ValueError:
        hint = "IPv6 addresses go in brackets: [::1]:8080:80" if ":" in text else None
        raise _Bad(f'host IP "{text}" is not a valid IP address', hint) from None


def _split(text: str) -> tuple[str, str | None, str]:
    """Return (ip, host port or None if absent, container part) like Docker's splitParts."""
    need_ip_form = "an IP needs IP:HOSTPORT:CPORT or IP::CPORT"
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise _Bad(f'IPv6 host IP "{text}" is missing its closing "]"', "e.g. [::1]:8080:80")
        ip_text, rest = text[1:close], text[close + 1 :]
        if not ip_text:
            raise _Bad('"[]" holds no IP address', "e.g. [::1]:8080:80 or [::]::80")
        parts = rest.split(":")
        if parts[0] != "" or len(parts) != 3:
            raise _Bad(need_ip_form, f"e.g. [{ip_text}]:8080:80 or [{ip_text}]::80")
        return ip_text, parts[1], parts[2]
    parts = text.split(":")
    if len(parts) == 1:
        return "", None, parts[0]
    if len(parts) == 2:
        host = parts[0]
        if host == "":
            raise _Bad("the host port before ':' is empty", "use 80 for any free host port")
        if "." in host:
            raise _Bad(need_ip_form, f"e.g. {host}:{parts[1]}:{parts[1]} or {host}::{parts[1]}")
        return "", host, parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _specs(ip: IPAddress | None, host: str | None, container: str) -> list[PortSpec]:
    """Validate the port fields and expand them the way Docker's ParsePortSpec does."""
    port_text, proto = _proto_port(container)
    if port_text == "":
        raise _Bad("no container port given", f"expected {PUBLISH_FORMAT}")
    cstart, cend = _port_range(port_text, "container port")
    count = cend - cstart + 1
    if not host:
        return [PortSpec(ip, None, None, p, p, proto) for p in range(cstart, cend + 1)]
    hstart, hend = _port_range(host, "host port")
    if count == 1:
        # A host range with one container port: any free port of the range.
        return [PortSpec(ip, hstart, hend, cstart, cend, proto)]
    if hend - hstart + 1 != count:
        raise _Bad(
            f"host ports {host} ({hend - hstart + 1}) and container ports {port_text} ({count})"
            " differ in number",
            "use ranges of equal length, or one container port to take any free host port"
            " of the range",
        )
    return [
        PortSpec(ip, hstart + i, hstart + i, cstart + i, cstart + i, proto) for i in range(count)
    ]


def parse_publish(text: str) -> list[PortSpec]:
    """Parse one `-p/--publish` value into one spec per container port."""
    try:
        if text == "":
            raise _Bad("it is empty", f"expected {PUBLISH_FORMAT}")
        ip_text, host, container = _split(text)
        if container == "":
            raise _Bad("no container port after the last ':'", f"expected {PUBLISH_FORMAT}")
        _proto_port(container)  # report a bad protocol before a bad IP, as Docker does
        ip = _ip(ip_text) if ip_text else None
        return _specs(ip, host, container)
    except _Bad as bad:
        raise InvalidArgument(f'invalid publish spec "{text}": {bad.reason}', bad.hint) from None


def parse_expose(text: str) -> list[tuple[int, str]]:
    """Parse one `--expose PORT[-END][/PROTO]` value into (port, proto) pairs."""
    try:
        if ":" in text:
            raise _Bad(
                "--expose takes a container port or range", "use -p HOSTPORT:CPORT to publish"
            )
        port_text, proto = _proto_port(text)
        if port_text == "":
            raise _Bad("no port given", "e.g. --expose 80 or --expose 8000-8010/udp")
        start, end = _port_range(port_text, "port")
        return [(port, proto) for port in range(start, end + 1)]
    except _Bad as bad:
        raise InvalidArgument(f'invalid expose spec "{text}": {bad.reason}', bad.hint) from None


ExposedPorts = dict[str, dict[str, object]]
PortBindings = dict[str, list[dict[str, str]]]


def to_api(specs: Iterable[PortSpec]) -> tuple[ExposedPorts, PortBindings]:
    """Return (ExposedPorts, PortBindings) exactly as the Docker CLI sends them for `-p`."""
    exposed: ExposedPorts = {}
    bindings: PortBindings = {}
    for spec in specs:
        for i in range(spec.container_port_end - spec.container_port_start + 1):
            key = f"{spec.container_port_start + i}/{spec.proto}"
            if spec.host_port_start is None or spec.host_port_end is None:
                host_port = ""
            elif spec.container_port_start != spec.container_port_end:
                host_port = str(spec.host_port_start + i)
            elif spec.host_port_start == spec.host_port_end:
                host_port = str(spec.host_port_start)
            else:
                host_port = f"{spec.host_port_start}-{spec.host_port_end}"
            host_ip = "" if spec.host_ip is None else str(spec.host_ip)
            exposed.setdefault(key, {})
            bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    return exposed, bindings


def _api_key(key: str, field: str) -> tuple[int, str]:
    try:
        port_text, proto = _proto_port(key)
        start, end = _port_range(port_text, "container port")
    except _Bad as bad:
        raise InvalidArgument(f'invalid {field} key "{key}": {bad.reason}', bad.hint) from None
    if start != end:
        raise InvalidArgument(f'invalid {field} key "{key}": expected one port', 'e.g. "80/tcp"')
    return start, proto


def _api_binding(key: str, port: int, proto: str, binding: object) -> PortSpec:
    where = f'invalid port binding for "{key}"'
    if not isinstance(binding, dict):
        raise InvalidArgument(
            f"{where}: expected an object, got {type(binding).__name__}",
            'e.g. {"HostIp": "", "HostPort": "8080"}',
        )
    fields = {}
    for name in ("HostIp", "HostPort"):
        value = binding.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(
                f"{where}: {name} must be a string, got {type(value).__name__}", 'e.g. "8080"'
            )
        fields[name] = value or ""
    try:
        ip = _ip(fields["HostIp"]) if fields["HostIp"] else None
        return _specs(ip, fields["HostPort"], f"{port}/{proto}")[0]
    except _Bad as bad:
        raise InvalidArgument(f"{where}: {bad.reason}", bad.hint) from None


def _mapping(value: object, field: str, example: str) -> dict[object, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"invalid {field}: expected an object, got {type(value).__name__}", f"e.g. {example}"
        )
    return value


def from_api(
    port_bindings: object, exposed_ports: object = None, publish_all: object = False
) -> list[PortSpec]:
    """Validate HostConfig.PortBindings / Config.ExposedPorts / PublishAllPorts from a client.

    Returns the specs to publish: one per binding, in request order, then (when publish_all,
    like `-P`) an ephemeral one for each exposed or bound-but-empty port with no binding.
    """
    if publish_all is not None and not isinstance(publish_all, bool):
        raise InvalidArgument(
            f"invalid PublishAllPorts: expected true or false, got {type(publish_all).__name__}"
        )
    bindings = _mapping(port_bindings, "PortBindings", '{"80/tcp": [{"HostPort": "8080"}]}')
    exposed = _mapping(exposed_ports, "ExposedPorts", '{"80/tcp": {}}')
    specs: list[PortSpec] = []
    unbound: dict[tuple[int, str], None] = {}  # ordered set
    for field, mapping in (("ExposedPorts", exposed), ("PortBindings", bindings)):
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise InvalidArgument(f"invalid {field} key {key!r}: expected a string")
            port, proto = _api_key(key, field)
            if field == "ExposedPorts":
                if value is not None and not isinstance(value, dict):
                    raise InvalidArgument(
                        f'invalid ExposedPorts value for "{key}": expected {{}}', '{"80/tcp": {}}'
                    )
                unbound[(port, proto)] = None
                continue
            if value is not None and not isinstance(value, list):
                raise InvalidArgument(
                    f'invalid PortBindings value for "{key}": expected a list,'
                    f" got {type(value).__name__}",
                    '{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}',
                )
            specs.extend(_api_binding(key, port, proto, b) for b in value or [])
            unbound[(port, proto)] = None
    if publish_all:
        bound = {(s.container_port_start, s.proto) for s in specs}
        specs.extend(
            PortSpec(None, None, None, p, p, pr) for p, pr in unbound if (p, pr) not in bound
        )
    return specs
