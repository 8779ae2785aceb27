"""kernel/nlraw.py builds an endpoint's netlink requests with pyroute2's message classes and
sends them itself: they must be what pyroute2's IPRoute sends for the same call (compared with
IPBatch, pyroute2's request compiler), and the kernel must do what they ask (checked with `ip -j`
in a lab) and refuse what it cannot (NetlinkError with the kernel's errno)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from ipaddress import ip_address, ip_interface
from typing import Any

import pytest
from pyroute2 import IPBatch
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from boxnet.kernel import nlraw
from boxnet.kernel.netns import netlink_socket_in
from boxnet.lab import Lab

MAC = "02:42:0a:63:07:05"


@pytest.fixture
def batch() -> Iterator[Any]:
    ipb = IPBatch()  # compiles requests into ipb.batch, sends nothing
    try:
        yield ipb
    finally:
        ipb.close()


def same_request(mine: Any, reference: bytes) -> None:
    """Byte for byte, but for the sequence number and port id (each sender numbers its own)."""
    data = nlraw.encode_batch([mine])
    assert data[:8] == reference[:8] and data[16:] == reference[16:]
    assert len(reference) == int.from_bytes(reference[:4], "little")  # one message, whole


def decoded(msg: Any) -> Any:
    (back,) = MarshalRtnl().parse(nlraw.encode_batch([msg]))
    assert back["header"]["flags"] == nlraw.CREATE and back["header"]["sequence_number"] == 1
    return back


@pytest.mark.parametrize("text", ["10.99.7.5/24", "172.17.0.2/16", "fd00:99:3::5/64"])
def test_address_is_iproute_addr_add(text: str, batch: Any) -> None:
    address = ip_interface(text)
    extra: dict[str, Any] = {"flags": IFA_F_NODAD}
    if address.version == 4:
        extra = {"broadcast": str(address.network.broadcast_address)}
    batch.addr(
        "add", index=7, address=str(address.ip), prefixlen=address.network.prefixlen, **extra
    )
    same_request(nlraw.address_message(7, address), bytes(batch.batch))
    back = decoded(nlraw.address_message(7, address))
    assert (back["index"], back["prefixlen"]) == (7, address.network.prefixlen)
    assert back.get_attr("IFA_ADDRESS") == str(address.ip)
    if address.version == 6:
        assert back.get_attr("IFA_FLAGS") == IFA_F_NODAD


@pytest.mark.parametrize("text", ["10.99.7.1", "fd00:99:3::1"])
def test_default_route_is_iproute_route_add(text: str, batch: Any) -> None:
    batch.route("add", gateway=text, proto="boot")
    same_request(nlraw.default_route_message(ip_address(text)), bytes(batch.batch))
    back = decoded(nlraw.default_route_message(ip_address(text)))
    assert (back["dst_len"], back["table"], back["proto"]) == (0, 254, 3)
    assert back.get_attr("RTA_GATEWAY") == text


def test_veth_is_iproute_link_add(batch: Any) -> None:
    peer = {"ifname": "eth0", "net_ns_fd": 9, "address": MAC, "mtu": 1450}
    batch.link("add", ifname="veth1a2b3c4", kind="veth", mtu=1450, master=4, state="up", peer=peer)
    mine = nlraw.veth_message("veth1a2b3c4", "eth0", 9, MAC, 1450, 4)
    same_request(mine, bytes(batch.batch))
    back = decoded(nlraw.veth_message("veth1a2b3c4", "eth0", 9, MAC, 1450, 4))
    assert back.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"
    born = back.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "VETH_INFO_PEER")
    assert (born.get_attr("IFLA_IFNAME"), born.get_attr("IFLA_NET_NS_FD")) == ("eth0", 9)
    assert born.get_attr("IFLA_ADDRESS") == MAC


def test_hairpin_is_ip_link_set_bridge_slave() -> None:
    (back,) = MarshalRtnl().parse(nlraw.encode_batch([nlraw.hairpin_message("veth1a2b3c4")]))
    assert back["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK  # changes; never creates
    assert (back["index"], back.get_attr("IFLA_IFNAME")) == (0, "veth1a2b3c4")  # by name
    assert back.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_KIND") == "bridge"
    slave = back.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA")
    assert slave.get_attr("IFLA_BRPORT_MODE") == 1


@pytest.mark.e2e
def test_the_kernel_does_what_they_ask(lab: Lab) -> None:
    host, box = lab.netns("host"), lab.netns("box")
    host.ip("link", "add", "br0", "type", "bridge")
    host.ip("link", "set", "br0", "up")
    bridge = host.ip_json("link", "show", "br0")[0]["ifindex"]
    fd = os.open(box.path, os.O_RDONLY)
    on_host = netlink_socket_in(host.path)
    try:
        veth = nlraw.veth_message("vethnl0", "eth0", fd, MAC, 1400, bridge)
        nlraw.request_batch(on_host, [veth])
        with pytest.raises(NetlinkError) as again:  # the same name twice
            nlraw.request_batch(
                on_host, [nlraw.veth_message("vethnl0", "eth1", fd, MAC, 1400, bridge)]
            )
        assert again.value.code == errno.EEXIST
        nlraw.request_batch(on_host, [nlraw.hairpin_message("vethnl0")])
        with pytest.raises(NetlinkError) as missing:  # a port that is not there
            nlraw.request_batch(on_host, [nlraw.hairpin_message("vethnl9")])
        assert missing.value.code == errno.ENODEV
    finally:
        on_host.close()
        os.close(fd)
    (link,) = host.ip_json("link", "show", "vethnl0")
    assert (link["master"], link["mtu"], "UP" in link["flags"]) == ("br0", 1400, True)
    (detail,) = host.ip_json("-d", "link", "show", "vethnl0")
    assert detail["linkinfo"]["info_slave_data"]["hairpin"] is True
    (eth0,) = box.ip_json("link", "show", "eth0")
    assert (eth0["address"], eth0["mtu"]) == (MAC, 1400)

    box.ip("link", "set", "eth0", "up")
    a4, a6 = ip_interface("10.99.7.5/24"), ip_interface("fd00:99:3::5/64")
    g4, g6 = ip_address("10.99.7.1"), ip_address("fd00:99:3::1")
    inside = netlink_socket_in(box.path)
    try:
        requests = [nlraw.address_message(eth0["ifindex"], a) for a in (a4, a6)]
        requests += [nlraw.default_route_message(g) for g in (g4, g6)]
        nlraw.request_batch(inside, requests)
        with pytest.raises(NetlinkError) as gone:  # no such interface
            nlraw.request_batch(inside, [nlraw.address_message(9999, a4)])
        assert gone.value.code == errno.ENODEV
        with pytest.raises(NetlinkError) as both:  # both refused: the first one's errno
            nlraw.request_batch(
                inside, [nlraw.default_route_message(g4), nlraw.address_message(9999, a4)]
            )
        assert both.value.code == errno.EEXIST
    finally:
        inside.close()
    addrs = {
        (a["local"], a["prefixlen"], a.get("broadcast")): a
        for a in box.ip_json("addr", "show", "eth0")[0]["addr_info"]
    }
    assert ("10.99.7.5", 24, "10.99.7.255") in addrs
    assert addrs[("fd00:99:3::5", 64, None)].get("nodad") is True
    for family, gateway in (("-4", "10.99.7.1"), ("-6", "fd00:99:3::1")):
        (route,) = box.ip_json("-d", family, "route", "show", "default")  # -d: proto boot
        assert (route["gateway"], route["dev"], route.get("protocol")) == (gateway, "eth0", "boot")
