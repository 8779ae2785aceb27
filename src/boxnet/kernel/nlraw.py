"""Netlink requests on a plain socket, without pyroute2's IPRoute around them.

The two requests of every endpoint's creation (links.add_veth_into): the veth pair, born with
its peer in the container's namespace, and the peer's address + default route in one batch;
and the hairpin mode of a port that publishes (links.set_hairpin).
Wrapping a socket in an IPRoute cost ~2 ms per endpoint in boxnetd (pyroute2 0.9 builds an
asyncio loop and a reader per IPRoute), and the daemon's own IPRoute serves every thread
through its owner thread (kernel/iproute.py): a hop each way, ~1 ms more, and more on a loaded
machine. So only the transport is ours: this sends the requests and reads the acks from the
calling thread. The messages are pyroute2's own (ifinfmsg, ifaddrmsg, rtmsg) with the fields
and attributes that `IPRoute.link/addr/route("add", ...)` put in them for the same call
(tests/unit/test_nlraw.py compares them with pyroute2's IPBatch), and the acks are parsed by
pyroute2's MarshalRtnl, which also makes the NetlinkError of a refusal. The price, paid for
netlink's formats staying in the library (docs/CHOICES.md): pyroute2 encodes the three messages
in ~0.3 ms of pure Python (~0.6 ms per endpoint inside a busy boxnetd) where the struct packing
this replaced took ~0.01 ms; add_veth_into went from 1.0 to 2.1 ms per endpoint (median of 10
alternating runs of bench/profile.py at N=30 on a shared 2-core machine).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import TypeAlias

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, rt_proto, rt_type
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.rtmsg import rtmsg

# NetlinkRequest's "create" flags: what IPRoute's "add" sends (fails if the object exists).
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
RT_TABLE_MAIN = 254
TIMEOUT = 10.0  # the kernel acks at once; this only bounds a wait that should never happen
NETLINK_ROUTE = 0
# Stateless once built (its seq_map stays empty: no per-request parsers), so the daemon's
# threads share one; building it copies the message map.
MARSHAL = MarshalRtnl()

Message: TypeAlias = "ifinfmsg | ifaddrmsg | rtmsg"  # pyroute2's, untyped: Any to mypy


def _request(msg: Message, kind: int) -> Message:
    msg["header"]["type"], msg["header"]["flags"] = kind, CREATE
    return msg


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def address_message(index: int, address: IPv4Interface | IPv6Interface) -> ifaddrmsg:
    """`ip addr add ADDRESS dev INDEX`, as IPRoute.addr("add", index=, address=, prefixlen=,
    and broadcast= for IPv4 / flags=IFA_F_NODAD for IPv6) builds it."""
    msg = ifaddrmsg()
    msg["family"], msg["index"] = _family(address.version), index
    msg["prefixlen"] = address.network.prefixlen
    ip = str(address.ip)
    if address.version == 4:
        msg["attrs"] = [
            ("IFA_ADDRESS", ip),
            ("IFA_BROADCAST", str(address.network.broadcast_address)),
            ("IFA_LOCAL", ip),
        ]
    else:  # no DAD: the address is the container's own by allocation, usable at once
        msg["attrs"] = [("IFA_ADDRESS", ip), ("IFA_FLAGS", IFA_F_NODAD)]
    return _request(msg, RTM_NEWADDR)


def default_route_message(gateway: IPv4Address | IPv6Address) -> rtmsg:
    """`ip route add default via GATEWAY` in the gateway's family, main table, as
    IPRoute.route("add", gateway=, proto="boot") builds it (proto boot: what `ip route add`
    and Docker's containers show, not pyroute2's default "static")."""
    msg = rtmsg()
    msg["family"], msg["table"] = _family(gateway.version), RT_TABLE_MAIN
    msg["proto"], msg["type"] = rt_proto["boot"], rt_type["unicast"]
    msg["attrs"] = [("RTA_GATEWAY", str(gateway))]
    return _request(msg, RTM_NEWROUTE)


def veth_message(
    host_ifname: str, peer_ifname: str, peer_netns_fd: int, peer_mac: str, mtu: int, master: int
) -> ifinfmsg:
    """`ip link add HOST mtu MTU master BRIDGE up type veth peer PEER netns FD address MAC
    mtu MTU`, as IPRoute.link("add", ifname=, kind="veth", mtu=, master=, state="up",
    peer={"ifname", "net_ns_fd", "address", "mtu"}) builds it."""
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
    msg = ifinfmsg()
    msg["flags"] = msg["change"] = IFF_UP
    msg["attrs"] = [
        ("IFLA_IFNAME", host_ifname),
        ("IFLA_MTU", mtu),
        ("IFLA_MASTER", master),
        ("IFLA_LINKINFO", {"attrs": info}),
    ]
    return _request(msg, RTM_NEWLINK)


def hairpin_message(ifname: str, on: bool = True) -> ifinfmsg:
    """`ip link set dev IFNAME type bridge_slave hairpin on|off`: the port's mode through the
    generic link request (IFLA_INFO_SLAVE_DATA, what `ip` sends), which finds the port by name;
    the bridge family's own request (IPRoute.brport) needs its index first."""
    slave = [("IFLA_BRPORT_MODE", int(on))]
    info = [("IFLA_INFO_SLAVE_KIND", "bridge"), ("IFLA_INFO_SLAVE_DATA", {"attrs": slave})]
    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_IFNAME", ifname), ("IFLA_LINKINFO", {"attrs": info})]
    msg["header"]["type"], msg["header"]["flags"] = RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK
    return msg


def encode_batch(messages: Sequence[Message]) -> bytes:
    """The requests numbered 1.. in order (port id 0: the kernel's) and encoded one after the
    other: one datagram."""
    data = bytearray()
    for sequence, msg in enumerate(messages, 1):
        msg["header"]["sequence_number"], msg["header"]["pid"] = sequence, 0
        msg.encode()
        data += msg.data
    return bytes(data)


def request_batch(sock: socket.socket, messages: Sequence[Message]) -> None:
    """Send the requests (each asking for an ack) in one datagram and wait for every ack;
    NetlinkError (OSError for ENOBUFS), as pyroute2 makes it, for the first request the kernel
    refused."""
    data = encode_batch(messages)
    sock.settimeout(TIMEOUT)
    if sock.send(data) != len(data):
        raise OSError("netlink batch sent in part")
    pending = set(range(1, len(messages) + 1))
    refused: Exception | None = None
    while pending:
        for reply in MARSHAL.parse(sock.recv(65536)):
            header = reply["header"]
            if header["type"] != NLMSG_ERROR or header["sequence_number"] not in pending:
                continue  # nothing else is asked for; read on
            pending.discard(header["sequence_number"])
            if header["error"] is not None and refused is None:
                refused = header["error"]
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


def set_hairpin(ifname: str) -> None:
    """hairpin_message on a socket of the calling thread's namespace (the daemon's): ~0.1 ms,
    where IPRoute.brport through the daemon's netlink owner thread took ~1 ms of every start
    with published ports. NetlinkError as the kernel refused it (ENODEV: no such port)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE) as sock:
        request_batch(sock, [hairpin_message(ifname)])
