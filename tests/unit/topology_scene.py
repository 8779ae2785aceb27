"""A small recorded world for the topology and explain unit tests (no kernel involved)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from boxnet.kernel.snapshot import KernelLink, KernelSnapshot
from boxnet.model import (
    Container,
    ContainerSpec,
    Endpoint,
    IPAMConfig,
    Network,
    PortBinding,
    State,
)
from boxnet.topology.explain import Scene
from boxnet.topology.model import Recorded

HOST_IP, OUTSIDE_IP = "203.0.113.2", "203.0.113.1"


def network(name: str, bridge: str, third: int, **kw: object) -> Network:
    ipam = IPAMConfig(IPv4Network(f"172.{third}.0.0/16"), IPv4Address(f"172.{third}.0.1"))
    return Network(
        id=f"id-{name}", name=name, driver="bridge", created="", ipam=(ipam,), bridge=bridge,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


NETWORKS = [
    network("bridge", "boxnet0", 17),
    network("net1", "br-net1", 20),
    network("net2", "br-net2", 21),
    network("intnet", "br-intnet", 22, internal=True),
    network("quiet", "br-quiet", 23, icc=False),
]
# (container, network, last byte of its address)
LAYOUT = [
    ("a1", "net1", 2), ("a2", "net1", 3), ("b1", "net2", 2), ("i1", "intnet", 2),
    ("d1", "bridge", 2), ("q1", "quiet", 2), ("q2", "quiet", 3),
]  # fmt: skip
NETS = {n.name: n for n in NETWORKS}


def ip_of(name: str) -> str:
    _c, net, last = next(x for x in LAYOUT if x[0] == name)
    return str(NETS[net].ipam[0].subnet.network_address + last)


CONTAINERS = [
    Container(id=f"{name}0000", name=name, spec=ContainerSpec("busybox", ("sleep",)), created="",
              state=State.RUNNING)
    for name, _net, _ in LAYOUT
]  # fmt: skip
ENDPOINTS = [
    Endpoint(
        id=f"ep-{name}", container_id=f"{name}0000", network_id=f"id-{net}", ifname="eth0",
        addresses=(IPv4Interface(f"{ip_of(name)}/16"),), gateways=(NETS[net].ipam[0].gateway,),
        mac="", host_veth=f"veth{name}",
    )
    for name, net, _ in LAYOUT
]  # fmt: skip
PORTS = [
    ("d10000", PortBinding(80, "tcp", IPv4Address("0.0.0.0"), 8080), ip_of("d1")),
    ("d10000", PortBinding(80, "tcp", IPv4Address("127.0.0.1"), 8090), ip_of("d1")),
    ("b10000", PortBinding(53, "udp", IPv4Address("0.0.0.0"), 5353), ip_of("b1")),
]


def recorded() -> Recorded:
    from boxnet.firewall.base import BridgeIntent, DnatIntent, FirewallModel

    fw = FirewallModel(
        bridges=tuple(
            BridgeIntent(n.bridge or "", n.ipam[0].subnet, n.masquerade, n.internal, n.icc)
            for n in NETWORKS
        ),
        dnats=tuple(
            DnatIntent(b.host_ip, b.proto, b.host_port, IPv4Address(ip), b.container_port)
            for _c, b, ip in PORTS
        ),
    )
    return Recorded(NETWORKS, CONTAINERS, ENDPOINTS, PORTS, firewall=fw,
                    firewall_backend="nftables", firewall_intact=True, hostname="lab")  # fmt: skip


def kernel() -> KernelSnapshot:
    """Everything recorded is there, plus the host's uplink and loopback."""
    links = [
        KernelLink(1, "lo", "", None, True, ("127.0.0.1/8",)),
        KernelLink(2, "eth0", "veth", None, True, (f"{HOST_IP}/24",), 9, True),
    ]
    index = 10
    for n in NETWORKS:
        links.append(KernelLink(index, n.bridge or "", "bridge", None, True,
                                (f"{n.ipam[0].gateway}/16",)))  # fmt: skip
        index += 1
    for name, net, _ in LAYOUT:
        links.append(KernelLink(index, f"veth{name}", "veth", NETS[net].bridge, True, (), 2, True))
        index += 1
    return KernelSnapshot(tuple(links))


def scene(backend: str = "nftables") -> Scene:
    rec = recorded()
    assert rec.firewall is not None
    addresses = [IPv4Interface(a) for link in kernel().links for a in link.addresses]
    return Scene(rec.networks, rec.containers, rec.endpoints, addresses, rec.firewall, backend)
