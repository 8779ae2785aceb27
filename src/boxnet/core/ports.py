"""Host port allocation for published ports.

A binding is reserved per (host ip, protocol, port) in the store; 0.0.0.0 overlaps every address.
A port some host process already holds is refused too (checked with a real bind() in the
daemon's namespace), with Docker's message.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address

from boxnet.errors import Conflict, InvalidArgument
from boxnet.firewall.base import ANY_IP
from boxnet.model import PortBinding, PortRequest

SOCK_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
FALLBACK_RANGE = (49153, 65535)


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(x) for x in fh.read().split())
            return low, high
    except (OSError, ValueError):
        return FALLBACK_RANGE


def host_process_holds(host_ip: IPv4Address, proto: str, port: int) -> bool:
    """True when a process of the host has (host_ip, port) bound."""
    sock_type = SOCK_TYPES.get(proto)
    if sock_type is None:
        return False
    with socket.socket(socket.AF_INET, sock_type) as sock:
        try:
            sock.bind((str(host_ip), port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_windows(requests: Iterable[PortRequest]) -> dict[str, tuple[int, int]]:
    """Per protocol, the host port span the requests can land in (ephemeral: the kernel's
    range), so only reservations inside it need to be read."""
    windows: dict[str, tuple[int, int]] = {}
    for req in requests:
        if req.host_port_start is None:
            low, high = ephemeral_range()
        else:
            low, high = req.host_port_start, req.host_port_end or req.host_port_start
        if req.proto in windows:
            low, high = min(low, windows[req.proto][0]), max(high, windows[req.proto][1])
        windows[req.proto] = (low, high)
    return windows


class _Taken:
    """The reserved (ip, port) pairs of one protocol, indexed by port: a clash check is O(1),
    so publishing stays cheap with 10,000 ports already published."""

    def __init__(self, used: set[tuple[str, int]]) -> None:
        self.by_port: dict[int, set[str]] = {}
        for ip, port in used:
            self.by_port.setdefault(port, set()).add(ip)

    def clashes(self, host_ip: IPv4Address, port: int) -> bool:
        ips = self.by_port.get(port)
        if not ips:
            return False
        # 0.0.0.0 overlaps every address, in both directions.
        return host_ip == ANY_IP or str(host_ip) in ips or str(ANY_IP) in ips

    def add(self, host_ip: IPv4Address, port: int) -> None:
        self.by_port.setdefault(port, set()).add(str(host_ip))


class PortAllocator:
    def __init__(self) -> None:
        self._cursor: dict[str, int] = {}

    def allocate(
        self,
        requests: Iterable[PortRequest],
        used_by_proto: dict[str, set[tuple[str, int]]],
        default_host_ip: IPv4Address,
        local_addresses: set[IPv4Address],
    ) -> list[PortBinding]:
        """Choose a host port for every request, or raise without reserving anything."""
        chosen: list[PortBinding] = []
        taken: dict[str, _Taken] = {}
        for req in requests:
            host_ip = req.host_ip if req.host_ip is not None else default_host_ip
            if host_ip != ANY_IP and host_ip not in local_addresses and not host_ip.is_loopback:
                raise InvalidArgument(
                    f"cannot publish on {host_ip}: the host has no such address",
                    hint="use one of the host's addresses, 127.0.0.1, or leave the IP out"
                    " (all addresses)",
                )
            if req.proto not in taken:
                taken[req.proto] = _Taken(used_by_proto.get(req.proto, set()))
            port = self._pick(req, host_ip, taken[req.proto])
            taken[req.proto].add(host_ip, port)
            chosen.append(PortBinding(req.container_port, req.proto, host_ip, port))
        return chosen

    def _pick(self, req: PortRequest, host_ip: IPv4Address, used: _Taken) -> int:
        if req.host_port_start is not None:
            start = req.host_port_start
            end = req.host_port_end or start
            for port in range(start, end + 1):
                if not used.clashes(host_ip, port) and not host_process_holds(
                    host_ip, req.proto, port
                ):
                    return port
            where = f"{host_ip}:{start}" if start == end else f"{host_ip}:{start}-{end}"
            raise Conflict(
                f"driver failed programming external connectivity: Bind for {where} failed:"
                " port is already allocated",
                hint="choose another host port, or leave it out for a free one",
            )
        low, high = ephemeral_range()
        span = high - low + 1
        cursor = self._cursor.get(req.proto, low)
        for offset in range(span):
            port = low + (cursor - low + offset) % span
            if not used.clashes(host_ip, port) and not host_process_holds(host_ip, req.proto, port):
                self._cursor[req.proto] = port + 1 if port < high else low
                return port
        raise Conflict(f"no free host port in {low}-{high} for {req.container_port}/{req.proto}")
