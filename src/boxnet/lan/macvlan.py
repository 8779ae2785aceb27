"""The `macvlan` network driver: containers get their own MAC and address on the parent's LAN.

Options (Docker's names, plus one of boxnet's):
- `parent=NIC` (required); `NIC.VID` creates that VLAN sub-interface if missing and deletes it
  with the network (only if boxnet created it).
- `macvlan_mode=bridge|private|vepa|passthru` (default bridge).
- `boxnet.macvlan.host_ip=IP`: the known fix for "the host cannot reach its own macvlan
  children" (the parent's traffic never loops back into its children): boxnet gives the host a
  macvlan sub-interface `bxmh-<id8>` on the same parent with IP/32 and routes the network's
  `--ip-range` through it. Needs `--ip-range`, and IP must be outside it and free on the LAN.
"""

from __future__ import annotations

import secrets
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet.core.clock import now_rfc3339
from boxnet.core.txn import Undo
from boxnet.errors import InvalidArgument, NotFound
from boxnet.ipam.allocator import first_host
from boxnet.kernel import lan as klan
from boxnet.kernel import links
from boxnet.model import Container, Driver, Endpoint, EndpointRequest, Network, mac_for_ip

if TYPE_CHECKING:
    from boxnet.core.networks import NetworkRequest, Networks
    from boxnet.core.sandbox import Sandboxes

OPT_PARENT = "parent"
OPT_MODE = "macvlan_mode"
OPT_HOST_IP = "boxnet.macvlan.host_ip"
OPT_CREATED_PARENT = "boxnet.macvlan.created_parent"
KNOWN = {OPT_PARENT, OPT_MODE, OPT_HOST_IP}
MODES = ("bridge", "private", "vepa", "passthru")


def shim_name(net: Network) -> str:
    return f"bxmh-{net.id[:8]}"


def create(networks: Networks, req: NetworkRequest) -> Network:
    unknown = set(req.options) - KNOWN
    if unknown:
        raise InvalidArgument(
            f"unknown macvlan option {sorted(unknown)[0]!r}", hint="known: " + ", ".join(KNOWN)
        )
    parent = req.options.get(OPT_PARENT, "")
    if not parent:
        raise InvalidArgument("macvlan needs -o parent=NIC", hint="e.g. -o parent=ens33")
    mode = req.options.get(OPT_MODE, "bridge")
    if mode not in MODES:
        raise InvalidArgument(f"invalid macvlan_mode {mode!r}", hint="one of " + ", ".join(MODES))
    if req.subnet is None:
        raise InvalidArgument(
            "macvlan needs --subnet (the LAN's subnet)", hint="e.g. --subnet 192.168.198.0/24"
        )
    subnet = req.subnet
    gateway = req.gateway or first_host(subnet)
    if gateway not in subnet:
        raise InvalidArgument(f"invalid gateway {gateway}: not inside {subnet}")
    if req.ip_range is not None and not req.ip_range.subnet_of(subnet):
        raise InvalidArgument(f"invalid --ip-range {req.ip_range}: not inside {subnet}")
    for name, addr in req.aux_addresses.items():
        if IPv4Address(addr) not in subnet:
            raise InvalidArgument(f"invalid --aux-address {name}={addr}: not inside {subnet}")
    host_ip = req.options.get(OPT_HOST_IP)
    if host_ip:
        try:
            shim_ip = IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(
                f"invalid {OPT_HOST_IP} {host_ip!r}: not an IPv4 address"
            ) from None
        if req.ip_range is None or shim_ip in req.ip_range or shim_ip not in subnet:
            raise InvalidArgument(
                f"{OPT_HOST_IP} needs --ip-range and an address in {subnet} outside that range",
                hint="e.g. --ip-range 192.168.198.160/28 -o boxnet.macvlan.host_ip=192.168.198.180",
            )
    ipr = networks.ipr
    options = dict(req.options)
    options.setdefault(OPT_MODE, mode)
    with Undo(f"create macvlan network {req.name}") as undo:
        info = links.link_info(ipr, parent)
        if info is None:
            base, dot, vid = parent.rpartition(".")
            base_info = links.link_info(ipr, base) if dot else None
            if base_info is None or not vid.isdigit() or not 1 <= int(vid) <= 4094:
                raise NotFound(
                    f"parent interface {parent} does not exist",
                    hint="ip link lists the host's interfaces; NIC.VID makes a VLAN of NIC",
                )
            klan.create_vlan(ipr, parent, base_info.index, int(vid))
            undo.push("delete VLAN", lambda: links.delete_link(ipr, parent))
            options[OPT_CREATED_PARENT] = "true"
            info = links.link_info(ipr, parent)
            assert info is not None
        elif info.master is not None:
            raise InvalidArgument(
                f"parent {parent} is a bridge port: macvlan cannot use it",
                hint="use the bridge with boxnet pipework, or another NIC",
            )
        mtu = klan.snapshot(ipr, parent)
        net = Network(
            id=secrets.token_hex(32),
            name=req.name,
            driver=Driver.MACVLAN,
            created=now_rfc3339(),
            subnet=subnet,
            gateway=gateway,
            ip_range=req.ip_range,
            aux_addresses=dict(req.aux_addresses),
            bridge=None,
            managed_bridge=False,
            internal=req.internal,
            attachable=req.attachable,
            mtu=mtu.mtu if mtu else 1500,
            options=options,
            labels=dict(req.labels),
        )
        if host_ip:
            _add_shim(networks, net, info.index, undo)
        networks.records.put_network(net)
        undo.push("delete record", lambda: networks.records.delete_network(net.id))
        undo.commit()
    return net


def _add_shim(networks: Networks, net: Network, parent: int, undo: Undo) -> None:
    ipr = networks.ipr
    name = shim_name(net)
    ip = IPv4Address(net.options[OPT_HOST_IP])
    klan.add_macvlan(ipr, name, parent, "bridge")
    undo.push("delete shim", lambda: links.delete_link(ipr, name))
    index = ipr.link_lookup(ifname=name)[0]
    ipr.link("set", index=index, state="up")
    links.ensure_address(ipr, index, IPv4Interface(f"{ip}/32"))
    assert net.ip_range is not None
    ipr.route("add", dst=str(net.ip_range), oif=index, scope=253)


def remove(networks: Networks, net: Network) -> None:
    ipr = networks.ipr
    if net.options.get(OPT_HOST_IP):
        links.delete_link(ipr, shim_name(net))
    if net.options.get(OPT_CREATED_PARENT) == "true":
        links.delete_link(ipr, net.options[OPT_PARENT])
    networks.records.delete_network(net.id)


def attach(
    sb: Sandboxes,
    c: Container,
    net: Network,
    req: EndpointRequest,
    ifname: str,
    primary: bool,
    path: Path,
    undo: Undo,
) -> Endpoint:
    parent = links.link_info(sb.ipr, net.options.get(OPT_PARENT, ""))
    if parent is None:
        raise NotFound(
            f"parent interface {net.options.get(OPT_PARENT)} of network {net.name} is missing"
        )
    assert net.subnet is not None
    ip = sb._lease(c, net, req.ipv4, undo)
    mode = net.options.get(OPT_MODE, "bridge")
    endpoint_id = secrets.token_hex(32)
    mac = c.spec.mac_address if (primary and c.spec.mac_address) else mac_for_ip(ip)
    klan.add_macvlan(sb.ipr, ifname, parent.index, mode, None if mode == "passthru" else mac, path)
    undo.push("delete macvlan", lambda: klan.delete_link_in(path, ifname))
    gateway = None if net.internal else net.gateway
    iface = IPv4Interface(f"{ip}/{net.subnet.prefixlen}")
    klan.configure_inside(path, ifname, iface, gateway if primary else None)
    mac = klan.link_mac_in(path, ifname)
    # Neighbours (and the LAN's switch) learn the new MAC at once, not at the first reply.
    klan.gratuitous_arp(path, ifname, mac, ip)
    endpoint = Endpoint(
        id=endpoint_id,
        container_id=c.id,
        network_id=net.id,
        ifname=ifname,
        ip=ip,
        prefixlen=net.subnet.prefixlen,
        gateway=gateway,
        mac=mac,
        host_veth="",
        aliases=req.aliases,
    )
    sb.records.put_endpoint(endpoint)
    undo.push("forget endpoint", lambda: sb.records.delete_endpoint(endpoint_id))
    return endpoint
