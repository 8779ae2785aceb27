"""One netlink batch on a plain socket, without pyroute2's IPRoute around it.

A container's address and default route go in one batch on a NETLINK_ROUTE socket made in its
namespace (links.add_veth_into). Wrapping that socket in an IPRoute to send the batch cost ~2 ms
per endpoint in boxnetd (pyroute2 0.9 builds an asyncio loop and a reader per IPRoute, measured
by bench/cni.py's profile), for a datagram out and the acks back. pyroute2 still encodes the
messages (its message classes own the attribute formats); this sends them and reads the acks.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from pyroute2.netlink import nlmsg
from pyroute2.netlink.exceptions import NetlinkError

NLMSG_ERROR = 2
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port id
TIMEOUT = 10.0  # the kernel acks at once; this only bounds a wait that should never happen


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
