"""The topology as one graph of frozen dataclasses, built from records + a kernel snapshot.

`build` is pure: give it what the store says (`Recorded`) and what the kernel holds
(`KernelSnapshot`) and it returns the nodes to draw and every place where the two differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from boxnet.firewall.base import FirewallModel
from boxnet.kernel.snapshot import KernelLink, KernelSnapshot
from boxnet.model import Container, Endpoint, Network, PortBinding, State

# Kernel names boxnet owns (a link by one of these prefixes that no record explains is a leftover).
OWNED_PREFIXES = ("br-", "veth", "boxnet0", "bxmh-")


@dataclass(frozen=True)
class Recorded:
    """What the store says: the inputs of `build`, read once under the controller's lock."""

    networks: Sequence[Network]
    containers: Sequence[Container]
    endpoints: Sequence[Endpoint]
    ports: Sequence[tuple[str, PortBinding, str]]  # (container id, binding, container ip)
    attachments: Sequence[dict[str, Any]] = ()  # pipework (store/lan_records)
    hostbridges: Sequence[dict[str, Any]] = ()
    firewall: FirewallModel | None = None
    firewall_backend: str = "none"
    firewall_intact: bool | None = None
    hostname: str = "host"


@dataclass(frozen=True)
class Iface:
    name: str
    kind: str
    up: bool
    addresses: tuple[str, ...]
    master: str | None = None


@dataclass(frozen=True)
class NetworkNode:
    id: str
    name: str
    driver: str
    subnet: str
    gateway: str
    bridge: str  # the bridge (bridge driver) or the parent NIC (macvlan); "" for host/none
    internal: bool
    icc: bool
    in_kernel: bool  # its bridge exists (macvlan: its parent); host/none: True


@dataclass(frozen=True)
class EndpointNode:
    network: str  # network name
    ip: str
    ifname: str  # the container's end
    host_veth: str  # the host's end ("" for macvlan)
    in_kernel: bool  # host end present and a port of the network's bridge


@dataclass(frozen=True)
class PortNode:
    host_ip: str
    host_port: int
    proto: str
    container_ip: str
    container_port: int

    @property
    def label(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip  # as `port` prints it
        return f"{host}:{self.host_port}->{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class LanNode:
    kind: str  # "pipework veth", "pipework macvlan"
    host_if: str  # the bridge or NIC it hangs off
    ifname: str
    host_ifname: str
    address: str


@dataclass(frozen=True)
class ContainerNode:
    id: str
    name: str
    state: str
    network_mode: str
    endpoints: tuple[EndpointNode, ...]
    ports: tuple[PortNode, ...]
    lan: tuple[LanNode, ...]


@dataclass(frozen=True)
class Difference:
    subject: str  # the kernel object's name
    recorded: str  # what boxnet recorded ("" when nothing)
    kernel: str  # what the kernel holds ("" when nothing)


@dataclass(frozen=True)
class Topology:
    hostname: str
    firewall_backend: str
    firewall_intact: bool | None
    uplinks: tuple[Iface, ...]  # the host's other interfaces (NICs, host bridges)
    hostbridges: tuple[tuple[str, str], ...]  # (bridge, uplink NIC)
    networks: tuple[NetworkNode, ...]
    containers: tuple[ContainerNode, ...]
    differences: tuple[Difference, ...]
    # network -> network -> may a container of the first ping one of the second (explain.py)
    network_reach: dict[str, dict[str, bool]] = field(default_factory=dict)
    # container -> container, when there are few enough to read as a table (service.py)
    container_reach: dict[str, dict[str, bool]] = field(default_factory=dict)


def _network_node(net: Network, kernel: dict[str, KernelLink]) -> NetworkNode:
    v4 = net.family(4)
    if net.driver == "bridge":
        iface = net.bridge or ""
    elif net.driver == "macvlan":
        iface = net.options.get("parent", "")
    else:
        iface = ""
    return NetworkNode(
        id=net.id,
        name=net.name,
        driver=str(net.driver),
        subnet=str(v4.subnet) if v4 else "",
        gateway=str(v4.gateway or "") if v4 else "",
        bridge=iface,
        internal=net.internal,
        icc=net.icc,
        in_kernel=not iface or iface in kernel,
    )


def _endpoint_node(e: Endpoint, net: Network | None, kernel: dict[str, KernelLink]) -> EndpointNode:
    name = net.name if net else e.network_id[:12]
    if net is not None and net.driver == "macvlan":
        return EndpointNode(
            name, str(e.primary.ip), e.ifname, "", True
        )  # lives in the container only
    link = kernel.get(e.host_veth)
    bridge = net.bridge if net else None
    ok = link is not None and link.master == bridge
    return EndpointNode(name, str(e.primary.ip), e.ifname, e.host_veth, ok)


def _differences(
    rec: Recorded, nets: Sequence[NetworkNode], containers: Sequence[ContainerNode],
    kernel: dict[str, KernelLink],
) -> list[Difference]:  # fmt: skip
    diffs: list[Difference] = []
    explained: set[str] = set()
    for n in nets:
        if not n.bridge:
            continue
        explained.add(n.bridge)
        if not n.in_kernel:
            diffs.append(Difference(n.bridge, f"{n.driver} of network {n.name}", "missing"))
        elif n.driver == "bridge" and not kernel[n.bridge].up:
            diffs.append(Difference(n.bridge, f"bridge of network {n.name}, up", "down"))
    for c in containers:
        for e in c.endpoints:
            if not e.host_veth:
                continue
            explained.add(e.host_veth)
            if e.in_kernel or c.state != State.RUNNING:
                continue
            link = kernel.get(e.host_veth)
            bridge = next((n.bridge for n in nets if n.name == e.network), "?")
            found = "missing" if link is None else f"port of {link.master or 'no bridge'}"
            diffs.append(Difference(e.host_veth, f"{c.name} on {bridge}", found))
        explained.update(x.host_ifname for x in c.lan if x.host_ifname)
    explained.update(str(hb.get("Name", "")) for hb in rec.hostbridges)
    # A macvlan network's host shim (lan/macvlan.py), present when it has a host address.
    explained.update(f"bxmh-{n.id[:8]}" for n in nets if n.driver == "macvlan")
    for name, link in sorted(kernel.items()):
        if name.startswith(OWNED_PREFIXES) and name not in explained:
            diffs.append(Difference(name, "", f"{link.kind or 'link'} nobody recorded"))
    if rec.firewall_intact is False:
        diffs.append(
            Difference(f"{rec.firewall_backend} rules", "boxnet's rules", "changed or removed")
        )
    return diffs


def build(rec: Recorded, snapshot: KernelSnapshot) -> Topology:
    kernel = snapshot.by_name()
    nets_by_id = {n.id: n for n in rec.networks}
    # host and none last: they have no bridge to draw
    order = sorted(rec.networks, key=lambda n: (n.driver in ("host", "null"), n.name))
    nets = [_network_node(n, kernel) for n in order]
    endpoints: dict[str, list[EndpointNode]] = {}
    for e in rec.endpoints:
        node = _endpoint_node(e, nets_by_id.get(e.network_id), kernel)
        endpoints.setdefault(e.container_id, []).append(node)
    ports: dict[str, list[PortNode]] = {}
    for cid, b, ip in rec.ports:
        port = PortNode(str(b.host_ip), b.host_port, b.proto, ip, b.container_port)
        ports.setdefault(cid, []).append(port)
    lan: dict[str, list[LanNode]] = {}
    for doc in rec.attachments:
        lan.setdefault(str(doc.get("container_id")), []).append(
            LanNode(
                kind=f"pipework {doc.get('kind', '')}",
                host_if=str(doc.get("host_if", "")),
                ifname=str(doc.get("ifname", "")),
                host_ifname=str(doc.get("host_ifname", "")),
                address=str(doc.get("address", "")),
            )
        )
    containers = [
        ContainerNode(
            id=c.id,
            name=c.name,
            state=str(c.state),
            network_mode=c.spec.network_mode,
            endpoints=tuple(sorted(endpoints.get(c.id, []), key=lambda e: e.network)),
            ports=tuple(sorted(ports.get(c.id, []), key=lambda p: (p.host_port, p.proto))),
            lan=tuple(lan.get(c.id, [])),
        )
        for c in sorted(rec.containers, key=lambda c: c.name)
    ]
    # Uplinks: every other interface of the host (NICs, the lab's veths, a user's br0).
    owned = {n.bridge for n in nets if n.driver == "bridge"}
    owned |= {x.host_ifname for c in containers for x in c.lan}
    uplinks = tuple(
        Iface(link.name, link.kind, link.up, link.addresses, link.master)
        for link in snapshot.links
        if link.name not in owned
        and link.master not in owned
        and not link.name.startswith(OWNED_PREFIXES)
    )
    hostbridges = tuple((str(h.get("Name", "")), str(h.get("Uplink", ""))) for h in rec.hostbridges)
    return Topology(
        hostname=rec.hostname,
        firewall_backend=rec.firewall_backend,
        firewall_intact=rec.firewall_intact,
        uplinks=uplinks,
        hostbridges=hostbridges,
        networks=tuple(nets),
        containers=tuple(containers),
        differences=tuple(_differences(rec, nets, containers, kernel)),
    )
