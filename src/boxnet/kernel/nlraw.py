"""Netlink requests on a plain socket, without pyroute2's IPRoute around them.

The two requests of every endpoint's creation (links.add_veth_into): the veth pair, born with
its peer in the container's namespace, and the peer's address + default route in one batch.
Wrapping a socket in an IPRoute cost ~2 ms per endpoint in boxnetd (pyroute2 0.9 builds an
asyncio loop and a reader per IPRoute), and the daemon's own IPRoute serves every thread
through its owner thread (kernel/iproute.py): a hop each way, ~1 ms more, and more on a loaded
machine. For a datagram out and the acks back, pyroute2 still encodes the messages (its message
classes own the attribute formats); this sends them and reads the acks, from the calling thread.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, nlmsg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg

NLMSG_ERROR = 2
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port id
TIMEOUT = 10.0  # the kernel acks at once; this only bounds a wait that should never happen
NETLINK_ROUTE = 0


def request_batch(sock: socket.socket, messages: Sequence[nlmsg]) -> None:
    """Send the messages (each asking for an ack, NLM_F_ACK) in one datagram and wait for
    every ack; NetlinkError with the errno of the first message the kernel refused."""
    data = bytearray()
    for sequence, msg in enumerate(messages, 1):
        msg["header"]["sequence_number"] = sequence
        msg.encode()
        data += msg.data
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
    """`ip link add HOST mtu MTU master BRIDGE up type veth peer PEER netns FD address MAC
    mtu MTU`, on a socket of the calling thread's namespace (the daemon's: its threads never
    change namespace). NetlinkError as the kernel refused it."""
    msg = ifinfmsg()
    msg["flags"] = msg["change"] = IFF_UP
    peer = [
        ("IFLA_IFNAME", peer_ifname),
        ("IFLA_NET_NS_FD", peer_netns_fd),
        ("IFLA_ADDRESS", peer_mac),
        ("IFLA_MTU", mtu),
    ]
    info = [
        ("IFLA_INFO_KIND", "veth"),
        ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer})]}),
    ]
    msg["attrs"] = [
        ("IFLA_IFNAME", host_ifname),
        ("IFLA_MTU", mtu),
        ("IFLA_MASTER", master),
        ("IFLA_LINKINFO", {"attrs": info}),
    ]
    msg["header"]["type"] = RTM_NEWLINK
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE) as sock:
        request_batch(sock, [msg])
