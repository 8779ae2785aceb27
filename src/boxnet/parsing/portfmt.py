"""`boxnet port CONTAINER [PORT[/PROTO]]` output, as the Docker CLI prints it.

Input is the Engine API's `NetworkSettings.Ports`: {"80/tcp": [{"HostIp": "0.0.0.0",
"HostPort": "8080"}], "443/tcp": null}. Lines are sorted with Docker's natural order
(fvbommel/sortorder.NaturalLess: digit runs compare as numbers), so 80 comes before 443,
80/tcp before 80/udp, and an IPv4 binding before the IPv6 one of the same port.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from boxnet.errors import InvalidArgument

_CHUNK_RE = re.compile(r"[0-9]+|[^0-9]", re.ASCII)


def _natural_key(text: str) -> list[tuple[int, int, str, int]]:
    """Sort key equivalent to NaturalLess: digits sort before other characters, digit runs by
    value (then fewer leading zeros first), other characters by byte value."""
    key = []
    for chunk in _CHUNK_RE.findall(text):
        if chunk[0].isdigit():
            digits = chunk.lstrip("0")
            key.append((0, len(digits), digits, len(chunk) - len(digits)))
        else:
            for byte in chunk.encode("utf-8", "surrogatepass"):
                key.append((1, byte, "", 0))
    return key


def _join_host_port(host: str, port: str) -> str:
    # Go's net.JoinHostPort: brackets around anything containing ':' (IPv6).
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _frontends(ports: Mapping[str, object], key: str) -> list[str]:
    bindings = ports.get(key)
    if not isinstance(bindings, list):
        return []  # null: exposed but not published
    out = []
    for binding in bindings:
        if isinstance(binding, Mapping):
            out.append(
                _join_host_port(
                    str(binding.get("HostIp") or ""), str(binding.get("HostPort") or "")
                )
            )
    return out


def format_port(
    ports: Mapping[str, object] | None, query: str | None = None, container: str = ""
) -> str:
    """Return what `docker port` prints (one line per binding, newline-terminated, or "").

    With query (`80`, `80/udp`; no protocol means tcp) only `HOSTIP:HOSTPORT` lines are printed,
    and a port with no binding is an error worded like Docker's (which quotes the query as typed).
    """
    ports = ports or {}
    if query is None:
        out = [f"{key} -> {frontend}" for key in ports for frontend in _frontends(ports, key)]
    else:
        port, _, proto = query.partition("/")
        if not re.fullmatch(r"[0-9]{1,5}", port, re.ASCII) or int(port) > 65535:
            raise InvalidArgument(
                f"invalid port ({port})", "give a container port, e.g. 80 or 53/udp"
            )
        key = f"{int(port)}/{(proto or 'tcp').lower()}"
        out = _frontends(ports, key)
        if not out:
            raise InvalidArgument(
                f"No public port '{query}' published for {container}",
                f"list the published ports with: boxnet port {container}".rstrip(),
            )
    out.sort(key=_natural_key)
    return "".join(line + "\n" for line in out)
