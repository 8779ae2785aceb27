"""The `macvlan` driver: containers get their own MAC and address on the parent's LAN.

Options (Docker's names, plus one of boxnet's):
- `parent=NIC` (required); `NIC.VID` creates that VLAN sub-interface if missing and deletes it
  with the network (only if boxnet created it: it is tagged with the alias `boxnet:vlan-parent`,
  so garbage collection can tell ours from the user's).
- `macvlan_mode=bridge|private|vepa|passthru` (default bridge).
- `boxnet.macvlan.host_ip=IP`: the known fix for "the host cannot reach its own macvlan
  children" (the parent's traffic never loops back into its children): boxnet gives the host a
  macvlan sub-interface `bxmh-<id8>` on the same parent with IP/32 and routes the network's
  `--ip-range` through it. Needs `--ip-range`, and IP must be outside it and free on the LAN.

The kind of child link is one class attribute: ipvlan is this driver with another link kind,
mode option and mode list (and its kernel verb beside kernel.lan.add_macvlan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from boxnet import faults
from boxnet.drivers.base import (
    HANDOVER_PREFIX,
    HostLink,
    NetworkDriver,
    Plan,
    PlanContext,
    Rollback,
)
from boxnet.errors import InvalidArgument, NotFound
from boxnet.ipam.allocator import check_pool, first_host
from boxnet.kernel import addressing, links
from boxnet.kernel import lan as klan
from boxnet.model import Endpoint, IPAMConfig, Network, NetworkRequest

OPT_PARENT = "parent"
OPT_HOST_IP = "boxnet.macvlan.host_ip"
OPT_CREATED_PARENT = "boxnet.macvlan.created_parent"
HOST_LINK_PREFIX = "bxmh-"  # + 8 hex digits of the network id
VLAN_ALIAS = "boxnet:vlan-parent"  # the VLAN sub-interfaces boxnet made (ifalias)


class MacvlanDriver(NetworkDriver):
    name = "macvlan"
    mode_option = "macvlan_mode"
    modes: tuple[str, ...] = ("bridge", "private", "vepa", "passthru")
    steps = (
        "macvlan.create.parent",
        "macvlan.create.host-link",
        "macvlan.join.link",
        "macvlan.delete.host-link",
    )

    @property
    def known_options(self) -> tuple[str, ...]:
        return (OPT_PARENT, self.mode_option, OPT_HOST_IP)

    # -- networks -------------------------------------------------------------------------------
    def validate(self, req: NetworkRequest, base: Network, ctx: PlanContext) -> Plan:
        unknown = set(req.options) - set(self.known_options)
        if unknown:
            raise InvalidArgument(
                f"unknown {self.name} option {sorted(unknown)[0]!r}",
                hint="known: " + ", ".join(self.known_options),
            )
        parent = req.options.get(OPT_PARENT, "")
        if not parent:
            raise InvalidArgument(f"{self.name} needs -o parent=NIC", hint="e.g. -o parent=ens33")
        mode = req.options.get(self.mode_option, self.modes[0])
        if mode not in self.modes:
            raise InvalidArgument(
                f"invalid {self.mode_option} {mode!r}", hint="one of " + ", ".join(self.modes)
            )
        if req.subnet is None:
            raise InvalidArgument(
                f"{self.name} needs --subnet (the LAN's subnet)",
                hint="e.g. --subnet 192.168.198.0/24",
            )
        subnet = req.subnet
        gateway = req.gateway or first_host(subnet)
        if gateway not in subnet:
            raise InvalidArgument(f"invalid gateway {gateway}: not inside {subnet}")
        check_pool(subnet, req.ip_range, req.aux_addresses)
        host_ip = req.options.get(OPT_HOST_IP)
        if host_ip:
            try:
                host_addr = IPv4Address(host_ip)
            except ValueError:
                raise InvalidArgument(
                    f"invalid {OPT_HOST_IP} {host_ip!r}: not an IPv4 address"
                ) from None
            if req.ip_range is None or host_addr in req.ip_range or host_addr not in subnet:
                raise InvalidArgument(
                    f"{OPT_HOST_IP} needs --ip-range and an address in {subnet} outside that range",
                    hint="e.g. --ip-range 192.168.198.160/28"
                    " -o boxnet.macvlan.host_ip=192.168.198.180",
                )
        options = dict(req.options)
        options.setdefault(self.mode_option, mode)
        if self._check_parent(parent, ctx.link(parent), ctx) == "vlan":
            options[OPT_CREATED_PARENT] = "true"
        net = replace(
            base,
            ipam=(IPAMConfig(subnet, gateway, req.ip_range, dict(req.aux_addresses)),),
            bridge=None,
            managed_bridge=False,
            options=options,
        )
        return Plan(net)

    @staticmethod
    def _check_parent(parent: str, info: HostLink | None, ctx: PlanContext) -> str:
        """ "nic" when the parent exists, "vlan" when it is NIC.VID to be made; else an error."""
        if info is not None:
            if info.master is not None:
                raise InvalidArgument(
                    f"parent {parent} is a bridge port: macvlan cannot use it",
                    hint="use the bridge with boxnet pipework, or another NIC",
                )
            return "nic"
        base, dot, vid = parent.rpartition(".")
        if not dot or ctx.link(base) is None or not vid.isdigit() or not 1 <= int(vid) <= 4094:
            raise NotFound(
                f"parent interface {parent} does not exist",
                hint="ip link lists the host's interfaces; NIC.VID makes a VLAN of NIC",
            )
        return "vlan"

    def create(self, net: Network, undo: Rollback) -> Network:
        parent = net.options[OPT_PARENT]
        if net.options.get(OPT_CREATED_PARENT) == "true":
            base, _dot, vid = parent.rpartition(".")
            base_info = links.link_info(self.ipr, base)
            if base_info is None:
                raise NotFound(f"parent interface {base} of {parent} does not exist")
            index = klan.create_vlan(self.ipr, parent, base_info.index, int(vid))
            undo.push("delete VLAN", lambda: links.delete_link(self.ipr, parent))
            klan.set_alias(self.ipr, index, VLAN_ALIAS)
            faults.point("macvlan.create.parent")
        info = links.link_info(self.ipr, parent)
        if info is None:
            raise NotFound(f"parent interface {parent} does not exist")
        state = klan.snapshot(self.ipr, parent)
        net = replace(net, mtu=state.mtu if state else 1500)
        if net.options.get(OPT_HOST_IP):
            self._add_host_link(net, info.index, undo)
            faults.point("macvlan.create.host-link")
        return net

    def _add_host_link(self, net: Network, parent: int, undo: Rollback) -> None:
        name = host_link_name(net)
        ip = IPv4Address(net.options[OPT_HOST_IP])
        klan.add_macvlan(self.ipr, name, parent, "bridge")
        undo.push("delete host link", lambda: links.delete_link(self.ipr, name))
        index = self.ipr.link_lookup(ifname=name)[0]
        self.ipr.link("set", index=index, state="up")
        addressing.ensure_address(self.ipr, index, IPv4Interface(f"{ip}/32"))
        ranges = [cfg.ip_range for cfg in net.ipam if cfg.ip_range is not None]
        for ip_range in ranges[:1]:  # the host IP is IPv4 (validate): its family's range
            self.ipr.route("add", dst=str(ip_range), oif=index, scope=253)

    def delete(self, net: Network) -> None:
        if net.options.get(OPT_HOST_IP):
            links.delete_link(self.ipr, host_link_name(net))
            faults.point("macvlan.delete.host-link")
        if net.options.get(OPT_CREATED_PARENT) == "true":
            links.delete_link(self.ipr, net.options[OPT_PARENT])

    # -- endpoints ------------------------------------------------------------------------------
    def join(
        self, net: Network, endpoint: Endpoint, primary: bool, netns_path: Path, undo: Rollback
    ) -> Endpoint:
        parent = links.link_info(self.ipr, net.options.get(OPT_PARENT, ""))
        if parent is None:
            raise NotFound(
                f"parent interface {net.options.get(OPT_PARENT)} of network {net.name} is missing"
            )
        mode = net.options.get(self.mode_option, self.modes[0])
        ifname = endpoint.ifname
        mac = None if mode == "passthru" else endpoint.mac
        klan.add_macvlan(self.ipr, ifname, parent.index, mode, mac, netns_path)
        undo.push("delete macvlan", lambda: klan.delete_link_in(netns_path, ifname))
        faults.point("macvlan.join.link")
        klan.configure_inside(
            netns_path, ifname, endpoint.addresses, endpoint.gateways if primary else ()
        )
        mac = klan.link_mac_in(netns_path, ifname)
        # Neighbours (and the LAN's switch) learn the new MAC at once, not at the first reply.
        klan.gratuitous_arp(netns_path, ifname, mac, endpoint.ip)
        return replace(endpoint, mac=mac, host_veth="")

    def hand_over(self, net: Network, endpoint: Endpoint, undo: Rollback) -> Endpoint:
        """The child link made here, down and unaddressed, for dockerd to move and configure."""
        parent = links.link_info(self.ipr, net.options.get(OPT_PARENT, ""))
        if parent is None:
            raise NotFound(
                f"parent interface {net.options.get(OPT_PARENT)} of network {net.name} is missing"
            )
        mode = net.options.get(self.mode_option, self.modes[0])
        mac = None if mode == "passthru" else endpoint.mac
        klan.add_macvlan(self.ipr, endpoint.ifname, parent.index, mode, mac)
        undo.push("delete macvlan", lambda: links.delete_link(self.ipr, endpoint.ifname))
        return replace(endpoint, host_veth="")

    def leave(self, net: Network, endpoint: Endpoint, netns_path: str) -> None:
        if netns_path:  # a child link lives only inside; it dies with the namespace otherwise
            links.delete_link_in(netns_path, endpoint.ifname)
        elif endpoint.ifname.startswith(HANDOVER_PREFIX):  # handed over, and given back here
            links.delete_link(self.ipr, endpoint.ifname)

    # -- garbage collection ---------------------------------------------------------------------
    def collect(
        self,
        networks: Sequence[Network],
        endpoints: Sequence[Endpoint],
        present: frozenset[str],
    ) -> list[str]:
        ours = [n for n in networks if n.driver == self.name]
        host_links = {host_link_name(n) for n in ours if n.options.get(OPT_HOST_IP)}
        parents = {n.options.get(OPT_PARENT) for n in ours}
        removed = []
        # VLAN parents boxnet made are named NIC.VID (and tagged with VLAN_ALIAS).
        candidates = [
            name
            for name in present
            if (name.startswith(HOST_LINK_PREFIX) and name not in host_links)
            or ("." in name and name not in parents)
        ]
        for name in candidates:
            info = links.link_info(self.ipr, name)
            if info is None:
                continue
            if info.ifname.startswith(HOST_LINK_PREFIX) and info.ifname not in host_links:
                links.delete_link(self.ipr, info.ifname)
                removed.append(f"{self.name} host link {info.ifname}")
            elif info.alias == VLAN_ALIAS and info.ifname not in parents:
                links.delete_link(self.ipr, info.ifname)
                removed.append(f"VLAN parent {info.ifname}")
        return removed


def host_link_name(net: Network) -> str:
    return f"{HOST_LINK_PREFIX}{net.id[:8]}"
