"""Host port allocation for published ports.

A binding is reserved per (host ip, protocol, port) in the store; 0.0.0.0 overlaps every IPv4
address and :: every IPv6 one (the families never clash: Docker keeps them apart too). A port
some host process already holds is refused too (checked with a real bind() in the daemon's
namespace), with Docker's message.

A request without an address on a network whose default is "every address" gets one binding
per family the container has (0.0.0.0, plus :: when its endpoint has IPv6), on the same host
port, as Docker does. A container without IPv6 gets no [::] binding: there is no proxy to carry
IPv6 to its IPv4 address (Docker with userland-proxy=false behaves the same).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from ipaddress import IPv4Address, IPv6Address

from boxnet.errors import Conflict, InvalidArgument
from boxnet.firewall.base import ANY, ANY_IP, ANY_IP6
from boxnet.model import IPAddress, PortBinding, PortRequest

SOCK_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
FALLBACK_RANGE = (49153, 65535)


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(x) for x in fh.read().split())
            return low, high
    except (OSError, ValueError):
        return FALLBACK_RANGE


def host_process_holds(host_ip: IPAddress, proto: str, port: int) -> bool:
    """True when a process of the host has (host_ip, port) bound."""
    sock_type = SOCK_TYPES.get(proto)
    if sock_type is None:
        return False
    family = socket.AF_INET if host_ip.version == 4 else socket.AF_INET6
    with socket.socket(family, sock_type) as sock:
        try:
            if family == socket.AF_INET6:  # [::] must not count IPv4 holders
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((str(host_ip), port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


# The reserved host ips of one protocol by host port: the records' own index (read in place),
# or a set of (ip, port) pairs (tests, callers without an index).
PortIndex = Mapping[int, AbstractSet[str]]


class _Taken:
    """The reserved (ip, port) pairs of one protocol, indexed by port: a clash check is O(1),
    so publishing stays cheap with 10,000 ports already published. An index is read in place
    (re-indexing 1,000 published ports on every start grew with the population); what this
    allocation adds goes to a small overlay."""

    def __init__(self, used: PortIndex | AbstractSet[tuple[str, int]]) -> None:
        self.base: PortIndex = {}
        self.added: dict[int, set[str]] = {}
        if isinstance(used, Mapping):
            self.base = used
        else:
            for ip, port in used:
                self.added.setdefault(port, set()).add(ip)

    def _ips(self, port: int) -> AbstractSet[str]:
        base, added = self.base.get(port, ()), self.added.get(port, ())
        return set(base) | set(added) if base and added else frozenset(base or added)

    def clashes(self, host_ip: IPAddress, port: int) -> bool:
        ips = self._ips(port)
        if not ips:
            return False
        # 0.0.0.0 (::) overlaps every address of its family, in both directions.
        if host_ip in ANY:
            return any((":" in ip) == (host_ip.version == 6) for ip in ips)
        return str(host_ip) in ips or str(ANY_IP if host_ip.version == 4 else ANY_IP6) in ips

    def add(self, host_ip: IPAddress, port: int) -> None:
        self.added.setdefault(port, set()).add(str(host_ip))


def _where(host_ip: IPAddress, ports: str) -> str:
    return f"[{host_ip}]:{ports}" if host_ip.version == 6 else f"{host_ip}:{ports}"


class PortAllocator:
    def __init__(self) -> None:
        self._cursor: dict[str, int] = {}

    def allocate(
        self,
        requests: Iterable[PortRequest],
        used_by_proto: Mapping[str, PortIndex | AbstractSet[tuple[str, int]]],
        default_host_ip: IPv4Address,
        local_addresses: set[IPAddress],
        ipv6: bool = False,
        ipv4: bool = True,
    ) -> list[PortBinding]:
        """Choose a host port for every request, or raise without reserving anything. `ipv6`
        (`ipv4`): the container has an IPv6 (IPv4) address to publish."""
        chosen: list[PortBinding] = []
        taken: dict[str, _Taken] = {}
        for req in requests:
            if req.host_ip is not None:
                host_ips: list[IPAddress] = [req.host_ip]
            elif default_host_ip == ANY_IP:
                host_ips = [ip for ip, has in ((ANY_IP, ipv4), (ANY_IP6, ipv6)) if has]
            else:
                host_ips = [default_host_ip]
            for host_ip in host_ips:
                self._check_address(host_ip, local_addresses, ipv6, ipv4)
            if req.proto not in taken:
                taken[req.proto] = _Taken(used_by_proto.get(req.proto, set()))
            port = self._pick(req, host_ips, taken[req.proto])
            for host_ip in host_ips:
                taken[req.proto].add(host_ip, port)
                chosen.append(PortBinding(req.container_port, req.proto, host_ip, port))
        return chosen

    @staticmethod
    def _check_address(host_ip: IPAddress, local: set[IPAddress], ipv6: bool, ipv4: bool) -> None:
        if isinstance(host_ip, IPv6Address) and not ipv6:
            raise InvalidArgument(
                f"cannot publish on [{host_ip}]: the container has no IPv6 address",
                hint="connect it to a network created with --ipv6, or publish on 0.0.0.0 or an"
                " IPv4 address",
            )
        if isinstance(host_ip, IPv4Address) and not ipv4:
            raise InvalidArgument(
                f"cannot publish on {host_ip}: the container has no IPv4 address (its network"
                " is IPv6-only)",
                hint="publish on [::] or an IPv6 address, or leave the IP out",
            )
        if host_ip not in ANY and host_ip not in local and not host_ip.is_loopback:
            raise InvalidArgument(
                f"cannot publish on {_where(host_ip, '')[:-1]}: the host has no such address",
                hint="use one of the host's addresses, 127.0.0.1, ::1, or leave the IP out"
                " (all addresses)",
            )

    def _free(self, req: PortRequest, host_ips: list[IPAddress], used: _Taken, port: int) -> bool:
        return not any(
            used.clashes(ip, port) or host_process_holds(ip, req.proto, port) for ip in host_ips
        )

    def _pick(self, req: PortRequest, host_ips: list[IPAddress], used: _Taken) -> int:
        if req.host_port_start is not None:
            start = req.host_port_start
            end = req.host_port_end or start
            for port in range(start, end + 1):
                if self._free(req, host_ips, used, port):
                    return port
            ports = str(start) if start == end else f"{start}-{end}"
            raise Conflict(
                "driver failed programming external connectivity: Bind for"
                f" {_where(host_ips[0], ports)} failed: port is already allocated",
                hint="choose another host port, or leave it out for a free one",
            )
        low, high = ephemeral_range()
        span = high - low + 1
        cursor = self._cursor.get(req.proto, low)
        for offset in range(span):
            port = low + (cursor - low + offset) % span
            if self._free(req, host_ips, used, port):
                self._cursor[req.proto] = port + 1 if port < high else low
                return port
        raise Conflict(f"no free host port in {low}-{high} for {req.container_port}/{req.proto}")
