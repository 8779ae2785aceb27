"""kernel/nlraw.py packs an endpoint's three netlink requests by hand: byte for byte what
pyroute2 encodes for the same requests (pyroute2 owns netlink's formats everywhere else)."""

from __future__ import annotations

import socket
from ipaddress import ip_address, ip_interface

import pytest
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from boxnet.kernel import nlraw

FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def encoded(msg: ifaddrmsg | rtmsg | ifinfmsg, kind: int) -> bytes:
    msg["header"]["type"], msg["header"]["flags"] = kind, FLAGS
    msg.encode()
    return bytes(msg.data)


@pytest.mark.parametrize("text", ["10.99.7.5/24", "172.17.0.2/16", "fd00:99:3::5/64"])
def test_address(text: str) -> None:
    address = ip_interface(text)
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if address.version == 4 else socket.AF_INET6
    msg["index"], msg["prefixlen"] = 7, address.network.prefixlen
    ip = str(address.ip)
    msg["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    if address.version == 4:
        msg["attrs"].append(("IFA_BROADCAST", str(address.network.broadcast_address)))
    else:
        msg["flags"] = nlraw.IFA_F_NODAD
    assert nlraw.address_message(7, address) == encoded(msg, RTM_NEWADDR)


@pytest.mark.parametrize("text", ["10.99.7.1", "fd00:99:3::1"])
def test_default_route(text: str) -> None:
    gateway = ip_address(text)
    msg = rtmsg()
    msg["family"] = socket.AF_INET if gateway.version == 4 else socket.AF_INET6
    msg["table"], msg["proto"] = nlraw.RT_TABLE_MAIN, nlraw.RTPROT_BOOT
    msg["scope"], msg["type"] = nlraw.RT_SCOPE_UNIVERSE, nlraw.RTN_UNICAST
    msg["attrs"] = [("RTA_GATEWAY", text)]
    assert nlraw.default_route_message(gateway) == encoded(msg, RTM_NEWROUTE)


def test_veth() -> None:
    msg = ifinfmsg()
    msg["flags"] = msg["change"] = IFF_UP
    peer = [
        ("IFLA_IFNAME", "eth0"),
        ("IFLA_NET_NS_FD", 9),
        ("IFLA_ADDRESS", "02:42:0a:63:07:05"),
        ("IFLA_MTU", 1450),
    ]
    info = [
        ("IFLA_INFO_KIND", "veth"),
        ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer})]}),
    ]
    msg["attrs"] = [
        ("IFLA_IFNAME", "veth1a2b3c4"),
        ("IFLA_MTU", 1450),
        ("IFLA_MASTER", 4),
        ("IFLA_LINKINFO", {"attrs": info}),
    ]
    mine = nlraw.veth_message("veth1a2b3c4", "eth0", 9, "02:42:0a:63:07:05", 1450, 4)
    assert mine == encoded(msg, RTM_NEWLINK)
