"""Netlink requests on a plain socket, without pyroute2's IPRoute around them.

The two requests of every endpoint's creation (links.add_veth_into): the veth pair, born with
its peer in the container's namespace, and the peer's address + default route in one batch.
Wrapping a socket in an IPRoute cost ~2 ms per endpoint in boxnetd (pyroute2 0.9 builds an
asyncio loop and a reader per IPRoute), and the daemon's own IPRoute serves every thread
through its owner thread (kernel/iproute.py): a hop each way, ~1 ms more, and more on a loaded
machine. And pyroute2's encoding of these three messages costs ~0.7 ms; they have fixed shapes,
packed here with struct (tests/unit/test_nlraw.py checks them against pyroute2's encoding).
This sends them and reads the acks, from the calling thread.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from pyroute2.netlink.exceptions import NetlinkError

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NEW = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = (
    1,
    3,
    4,
    10,
    18,
    28,
)
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_F_NODAD = 1, 2, 4, 0x02
RTA_GATEWAY, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 5, 254, 3, 0, 1
IFF_UP = 0x1
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port id
IFINFO = struct.Struct("=BxHiII")  # struct ifinfomsg: family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # struct ifaddrmsg: family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg
TIMEOUT = 10.0  # the kernel acks at once; this only bounds a wait that should never happen
NETLINK_ROUTE = 0


def _attr(kind: int, payload: bytes) -> bytes:
    """One attribute (struct nlattr), padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _message(kind: int, body: bytes) -> bytes:
    """A request (sequence 0: request_batch numbers them)."""
    return HEADER.pack(HEADER.size + len(body), kind, NEW, 0, 0) + body


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def address_message(index: int, address: IPv4Interface | IPv6Interface) -> bytes:
    """`ip addr add ADDRESS dev INDEX` (IPv4 with its broadcast; IPv6 without DAD)."""
    family, packed = _family(address.version), address.ip.packed
    flags = IFA_F_NODAD if address.version == 6 else 0
    body = IFADDR.pack(family, address.network.prefixlen, flags, RT_SCOPE_UNIVERSE, index)
    body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    if address.version == 4:
        body += _attr(IFA_BROADCAST, address.network.broadcast_address.packed)
    return _message(RTM_NEWADDR, body)


def default_route_message(gateway: IPv4Address | IPv6Address) -> bytes:
    """`ip route add default via GATEWAY` in the gateway's family, main table."""
    family = _family(gateway.version)
    body = RTMSG.pack(
        family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
    )
    return _message(RTM_NEWROUTE, body + _attr(RTA_GATEWAY, gateway.packed))


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


def veth_message(
    host_ifname: str, peer_ifname: str, peer_netns_fd: int, peer_mac: str, mtu: int, master: int
) -> bytes:
    """`ip link add HOST mtu MTU master BRIDGE up type veth peer PEER netns FD address MAC
    mtu MTU`."""
    peer = IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    peer += _attr(IFLA_IFNAME, _name(peer_ifname)) + _attr(
        IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)
    )
    peer += _attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", "")))
    peer += _attr(IFLA_MTU, struct.pack("=I", mtu))
    info = _attr(IFLA_INFO_KIND, _name("veth")) + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
    body = IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP)
    body += _attr(IFLA_IFNAME, _name(host_ifname)) + _attr(IFLA_MTU, struct.pack("=I", mtu))
    body += _attr(IFLA_MASTER, struct.pack("=I", master)) + _attr(IFLA_LINKINFO, info)
    return _message(RTM_NEWLINK, body)


def request_batch(sock: socket.socket, messages: Sequence[bytes]) -> None:
    """Send the requests (each asking for an ack) in one datagram and wait for every ack;
    NetlinkError with the errno of the first request the kernel refused."""
    data = bytearray()
    for sequence, msg in enumerate(messages, 1):
        data += msg[:8] + struct.pack("=I", sequence) + msg[12:]
    sock.settimeout(TIMEOUT)
    if sock.send(data) != len(data):
        raise OSError("netlink batch sent in part")
    pending = set(range(1, len(messages) + 1))
    refused: NetlinkError | None = None
    while pending:
        reply = sock.recv(65536)
        offset = 0
        while offset + HEADER.size <= len(reply):
            length, kind, _flags, sequence, _port = HEADER.unpack_from(reply, offset)
            if length < HEADER.size:
                break  # malformed: read on
            if kind == NLMSG_ERROR and sequence in pending and length >= HEADER.size + 4:
                pending.discard(sequence)
                (code,) = struct.unpack_from("=i", reply, offset + HEADER.size)
                if code and refused is None:
                    refused = NetlinkError(-code)
            offset += (length + 3) & ~3
    if refused is not None:
        raise refused


def add_veth(
    host_ifname: str, peer_ifname: str, peer_netns_fd: int, peer_mac: str, mtu: int, master: int
) -> None:
    """The veth pair of veth_message, on a socket of the calling thread's namespace (the
    daemon's: its threads never change namespace). NetlinkError as the kernel refused it."""
    msg = veth_message(host_ifname, peer_ifname, peer_netns_fd, peer_mac, mtu, master)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE) as sock:
        request_batch(sock, [msg])
