"""The `bridge` driver: a Linux bridge per network (`br-<id12>`, or `boxnet0` for the default
network), one veth pair per endpoint (`veth<id7>` on the host, ethN inside), NAT and isolation by
the firewall intents. Docker's default and most common driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from boxnet import faults
from boxnet.drivers.base import DriverEnv, NetworkDriver, Plan, PlanContext, Rollback
from boxnet.drivers.bridge_default import default_ipv6, free_default_bip
from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.firewall.base import BridgeIntent
from boxnet.ipam.allocator import (
    Occupant,
    check_gateway,
    check_pool,
    check_subnet_free,
    first_host,
    pick_subnet,
)
from boxnet.kernel import addressing, bridges, links
from boxnet.model import (
    DEFAULT_BRIDGE_NAME,
    OPT_BRIDGE_NAME,
    OPT_ENDPOINT_GATEWAY,
    OPT_ENDPOINT_GATEWAY6,
    OPT_GATEWAY_MODE6,
    OPT_HOST_BINDING,
    OPT_ICC,
    OPT_MASQ,
    OPT_MTU,
    Endpoint,
    IPAMConfig,
    IPInterface,
    IPNetwork,
    Network,
    NetworkRequest,
)
from boxnet.parsing.names import validate_ifname

if TYPE_CHECKING:
    from boxnet.config import DaemonConfig

log = logging.getLogger("boxnet.drivers.bridge")

KNOWN_OPTIONS = {OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQ, OPT_HOST_BINDING, OPT_MTU, OPT_GATEWAY_MODE6}
GATEWAY_MODES6 = ("nat", "routed")
BRIDGE_PREFIX = "br-"  # + 12 hex digits of the network id
VETH_PREFIX = "veth"  # + 7 hex digits of the endpoint id


def bool_option(options: dict[str, str], key: str, default: bool) -> bool:
    value = options.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"invalid value {value!r} for option {key}: expected true or false")


def validate_bridge_name(bridge: str) -> None:
    # A user-chosen name reaches the kernel and nft rules: validate it before either.
    validate_ifname(bridge)
    if not all(ch.isalnum() or ch in "_.-" for ch in bridge) or not bridge[0].isalnum():
        raise InvalidArgument(
            f"invalid bridge name {bridge!r}: use letters, digits, '_', '.' and '-'",
            hint="e.g. -o com.docker.network.bridge.name=br-lan0",
        )


class BridgeDriver(NetworkDriver):
    name = "bridge"
    ipv6 = True
    steps: ClassVar[tuple[str, ...]] = ("bridge.join.veth",)

    def __init__(self, env: DriverEnv) -> None:
        super().__init__(env)
        # network id -> its bridge's ifindex: a netlink lookup costs ~1 ms on every attach.
        # Keyed by id, so a re-created network (even with the same bridge name) misses.
        self._indexes: dict[str, int] = {}

    # -- networks -------------------------------------------------------------------------------
    def validate(self, req: NetworkRequest, base: Network, ctx: PlanContext) -> Plan:
        unknown = set(req.options) - KNOWN_OPTIONS
        if unknown:
            raise InvalidArgument(
                f"unknown bridge option {sorted(unknown)[0]!r}",
                hint="known options: " + ", ".join(sorted(KNOWN_OPTIONS)),
            )
        mode6 = req.options.get(OPT_GATEWAY_MODE6, "nat")
        if mode6 not in GATEWAY_MODES6:
            raise InvalidArgument(
                f"invalid {OPT_GATEWAY_MODE6} {mode6!r}: expected nat or routed",
                hint="routed: no NAT66, the outside reaches the containers' published ports"
                " at their own addresses",
            )
        if mode6 == "routed" and not req.ipv6:
            raise InvalidArgument(
                f"{OPT_GATEWAY_MODE6}=routed on a network without IPv6", hint="add --ipv6"
            )
        warnings: tuple[str, ...] = ()
        occupied = ctx.occupied()
        ipam: tuple[IPAMConfig, ...] = ()
        if req.ipv4:  # not for an IPv6-only network (--ipv4=false)
            ipam4, warnings = self._plan_ipv4(req, ctx, occupied)
            ipam += (ipam4,)
        if req.ipv6:
            ipam += (self._plan_ipv6(req, ctx, occupied),)
        bridge = req.options.get(OPT_BRIDGE_NAME) or f"{BRIDGE_PREFIX}{base.id[:12]}"
        validate_bridge_name(bridge)
        if any(n.bridge == bridge for n in ctx.networks):
            raise Conflict(f"bridge name {bridge} is already used by another network")
        try:
            mtu = int(req.options.get(OPT_MTU, ctx.mtu))
        except ValueError:
            raise InvalidArgument(f"invalid MTU {req.options[OPT_MTU]!r}: not a number") from None
        if not 68 <= mtu <= 65535:
            raise InvalidArgument(f"invalid MTU {mtu}: must be between 68 and 65535")
        try:
            host_binding = IPv4Address(req.options.get(OPT_HOST_BINDING, str(ctx.host_binding)))
        except ValueError as exc:
            raise InvalidArgument(f"invalid {OPT_HOST_BINDING}: {exc}") from None
        net = replace(
            base,
            ipam=ipam,
            ipv6=req.ipv6,
            bridge=bridge,
            managed_bridge=True,
            icc=bool_option(req.options, OPT_ICC, True),
            masquerade=bool_option(req.options, OPT_MASQ, True),
            mtu=mtu,
            host_binding=host_binding,
            # inspect shows the bridge's name among the options, as Docker does
            options={OPT_BRIDGE_NAME: bridge, **req.options},
        )
        return Plan(net, warnings)

    @staticmethod
    def _plan_ipv4(
        req: NetworkRequest, ctx: PlanContext, occupied: list[Occupant]
    ) -> tuple[IPAMConfig, tuple[str, ...]]:
        """The IPv4 family: the subnet asked for, or the first free one of the pools."""
        warnings: tuple[str, ...] = ()
        subnet: IPNetwork
        if req.subnet is not None:
            check_subnet_free(req.subnet, occupied)
            subnet = req.subnet
        else:
            subnet, skipped = pick_subnet(ctx.pools, occupied)
            if skipped:
                log.info("network %s: skipped %s", req.name, "; ".join(skipped[:5]))
            # Subnets skipped for the host's own routes/addresses are worth telling the user
            # (they explain a surprising subnet); skipping our own networks is routine.
            foreign = [s for s in skipped if "overlaps network " not in s]
            if foreign:
                warnings = ("skipped " + "; ".join(foreign[:3]),)
        gateway = req.gateway or first_host(subnet)
        check_gateway(subnet, gateway)
        check_pool(subnet, req.ip_range, req.aux_addresses)
        return IPAMConfig(subnet, gateway, req.ip_range, dict(req.aux_addresses)), warnings

    @staticmethod
    def _plan_ipv6(req: NetworkRequest, ctx: PlanContext, occupied: list[Occupant]) -> IPAMConfig:
        """The IPv6 family of a `--ipv6` network: the subnet asked for, or a /64 of the pool."""
        asked = req.ipam6
        if asked is None:
            subnet, _skipped = pick_subnet(ctx.pools6, occupied)
            return IPAMConfig(subnet, first_host(subnet))
        check_subnet_free(asked.subnet, occupied)
        gateway = asked.gateway or first_host(asked.subnet)
        check_gateway(asked.subnet, gateway)
        check_pool(asked.subnet, asked.ip_range, asked.aux_addresses)
        return replace(asked, gateway=gateway)

    def default_network(
        self, base: Network, config: DaemonConfig, old: Network | None, ctx: PlanContext
    ) -> Network:
        """The predefined `bridge` network as the daemon's configuration says (`--bridge`,
        `--bip`, `--fixed-cidr`, ...)."""
        options = {OPT_BRIDGE_NAME: config.bridge or DEFAULT_BRIDGE_NAME}
        if config.default_gateway is not None:
            options[OPT_ENDPOINT_GATEWAY] = str(config.default_gateway)
        if config.ipv6 and config.default_gateway_v6 is not None:
            options[OPT_ENDPOINT_GATEWAY6] = str(config.default_gateway_v6)
        net = replace(
            base,
            icc=config.icc,
            masquerade=config.ip_masq,
            mtu=config.mtu,
            host_binding=config.ip,
            options=options,
        )
        if config.bridge:
            # A user's bridge: use the address it already has; never create or delete it.
            info = links.link_info(self.ipr, config.bridge)
            if info is None:
                raise NotFound(
                    f"bridge {config.bridge} (from --bridge) does not exist",
                    hint=f"create it first (ip link add {config.bridge} type bridge) and give it"
                    " an address, or drop the bridge option",
                )
            addrs = addressing.addresses(info.index)
            if not addrs:
                raise InvalidArgument(
                    f"bridge {config.bridge} (from --bridge) has no IPv4 address",
                    hint=f"add one: ip addr add 10.10.10.1/24 dev {config.bridge}",
                )
            iface = addrs[0]
            own = IPAMConfig(iface.network, iface.ip, config.fixed_cidr)
            return replace(net, ipam=(own,), bridge=config.bridge, managed_bridge=False)
        iface = config.bip if config.bip is not None else free_default_bip(old, ctx)
        ipam: tuple[IPAMConfig, ...] = (IPAMConfig(iface.network, iface.ip, config.fixed_cidr),)
        if config.ipv6:
            ipam += (default_ipv6(config, ctx),)
        return replace(net, ipam=ipam, ipv6=config.ipv6, bridge=DEFAULT_BRIDGE_NAME)

    def create(self, net: Network, undo: Rollback) -> Network:
        """Make (or bring in line: idempotent) the bridge and its gateway address."""
        assert net.bridge is not None
        if net.managed_bridge:
            index, new = bridges.ensure_bridge(self.ipr, net.bridge, net.mtu)
            undo.push("delete bridge", lambda: links.delete_link(self.ipr, net.bridge or ""))
            wanted = [cfg.gateway_interface for cfg in net.ipam if cfg.gateway_interface]
            present: list[IPInterface] = []
            if not new:  # an existing bridge: what it holds (a new one holds nothing)
                present += addressing.addresses(index)
                present += addressing.global_ipv6_addresses(index)
            for iface in present:
                if iface not in wanted:  # a stale bip (bip6) from an earlier configuration
                    addressing.remove_address(self.ipr, index, iface)
            for gateway in wanted:
                addressing.ensure_address(self.ipr, index, gateway)
        if self.env.route_localnet:
            links.set_sysctl(f"net/ipv4/conf/{net.bridge}/route_localnet", "1")
        return net

    def delete(self, net: Network) -> None:
        self._indexes.pop(net.id, None)
        if net.bridge and net.managed_bridge:
            links.delete_link(self.ipr, net.bridge)

    # The kernel takes ~40 ms to delete a bridge (RCU barriers), most of `network rm`: the
    # bridge is set down and loses its addresses at once (its subnet is free), and its deletion
    # is queued on the netlink owner thread, after which every later netlink call runs (its
    # name is free for them). Subclasses with more kernel objects (overlay) delete at once.
    defer_delete: ClassVar[bool] = True

    def deletes_later(self, net: Network) -> bool:
        return self.defer_delete and bool(net.bridge) and net.managed_bridge

    def delete_later(self, net: Network, then: Callable[[BaseException | None], None]) -> None:
        self._indexes.pop(net.id, None)
        gateways = [cfg.gateway_interface for cfg in net.ipam if cfg.gateway_interface]
        bridges.delete_bridge_later(self.ipr, net.bridge or "", gateways, then)

    # -- endpoints ------------------------------------------------------------------------------
    def join(
        self, net: Network, endpoint: Endpoint, primary: bool, netns_path: Path, undo: Rollback
    ) -> Endpoint:
        if net.bridge is None:
            raise InvalidArgument(f"cannot attach a container to network {net.name}")
        endpoint = replace(endpoint, host_veth=VETH_PREFIX + endpoint.id[:7])
        try:
            links.add_veth_into(
                self.ipr,
                netns_path,
                self._veth_plan(net, endpoint, self._bridge_index(net), primary),
            )
        except Exception:
            self._indexes.pop(net.id, None)  # maybe stale: look it up next time
            raise
        undo.push("delete veth", lambda: links.delete_link(self.ipr, endpoint.host_veth))
        faults.point("bridge.join.veth")
        return endpoint

    def hand_over(self, net: Network, endpoint: Endpoint, undo: Rollback) -> Endpoint:
        if net.bridge is None:
            raise InvalidArgument(f"cannot attach a container to network {net.name}")
        endpoint = replace(endpoint, host_veth=VETH_PREFIX + endpoint.id[:7])
        try:
            plan = self._veth_plan(net, endpoint, self._bridge_index(net), False)
            links.add_veth_pair(self.ipr, plan)
        except Exception:
            self._indexes.pop(net.id, None)
            raise
        undo.push("delete veth", lambda: links.delete_link(self.ipr, endpoint.host_veth))
        return endpoint

    @staticmethod
    def _veth_plan(
        net: Network, endpoint: Endpoint, bridge_index: int, primary: bool
    ) -> links.VethPlan:
        return links.VethPlan(
            host_ifname=endpoint.host_veth,
            container_ifname=endpoint.ifname,
            mac=endpoint.mac,
            mtu=net.mtu,
            bridge_index=bridge_index,
            addresses=endpoint.addresses,
            gateways=endpoint.gateways if primary else (),
        )

    def _bridge_index(self, net: Network) -> int:
        index = self._indexes.get(net.id)
        if index is None:
            assert net.bridge is not None
            bridge = links.link_info(self.ipr, net.bridge)
            if bridge is None:
                raise Conflict(f"bridge {net.bridge} of network {net.name} is missing")
            index = self._indexes[net.id] = bridge.index
        return index

    def leave(self, net: Network, endpoint: Endpoint, netns_path: str) -> None:
        if netns_path:  # by its name inside: the host end goes with it
            links.delete_link_in(netns_path, endpoint.ifname)
        else:
            links.delete_link(self.ipr, endpoint.host_veth)

    def published(self, net: Network, endpoint: Endpoint) -> None:
        # Hairpin to itself: where br_netfilter NATs bridged frames, the container's own
        # request to host:port comes back out of the port it went in (Docker does the same).
        links.set_hairpin(endpoint.host_veth)

    # -- firewall, repair, garbage collection ---------------------------------------------------
    def firewall(self, net: Network) -> tuple[BridgeIntent, ...]:
        if not net.bridge:
            return ()
        routed6 = net.options.get(OPT_GATEWAY_MODE6) == "routed"
        return tuple(
            BridgeIntent(
                bridge=net.bridge,
                subnet=cfg.subnet,
                masquerade=net.masquerade and not (routed6 and cfg.version == 6),
                internal=net.internal,
                icc=net.icc,
                routed=routed6 and cfg.version == 6,
            )
            for cfg in net.ipam  # one per address family: both firewall backends take both
        )

    def repair(
        self, net: Network, endpoint: Endpoint, netns_path: str, present: frozenset[str]
    ) -> str:
        if endpoint.host_veth in present or not net.bridge or not netns_path:
            return ""
        bridge = links.link_info(self.ipr, net.bridge)
        if bridge is None:
            raise Conflict(f"bridge {net.bridge} of network {net.name} is missing")
        plan = self._veth_plan(net, endpoint, bridge.index, endpoint.ifname == "eth0")
        links.add_veth_into(self.ipr, Path(netns_path), plan)
        return f"veth {endpoint.host_veth}"

    def collect(
        self,
        networks: Sequence[Network],
        endpoints: Sequence[Endpoint],
        present: frozenset[str],
    ) -> list[str]:
        bridges = {n.bridge for n in networks if n.bridge}
        owned_veths = {e.host_veth for e in endpoints}
        candidates = [
            name
            for name in present
            if (name.startswith(VETH_PREFIX) and name not in owned_veths)
            or (
                name.startswith(BRIDGE_PREFIX)
                and len(name) == len(BRIDGE_PREFIX) + 12
                and name not in bridges
            )
        ]
        if not candidates:
            return []
        bridge_index = {
            info.index
            for info in (links.link_info(self.ipr, b) for b in bridges if b in present)
            if info is not None
        }
        removed = []
        for name in candidates:
            info = links.link_info(self.ipr, name)
            if info is None:
                continue
            if (
                info.ifname.startswith(VETH_PREFIX)
                and info.master in bridge_index
                and info.ifname not in owned_veths
            ):
                links.delete_link(self.ipr, info.ifname)
                removed.append(f"veth {info.ifname}")
            elif (
                info.kind == "bridge"
                and info.ifname.startswith(BRIDGE_PREFIX)
                and len(info.ifname) == len(BRIDGE_PREFIX) + 12
                and info.ifname not in bridges
            ):
                links.delete_link(self.ipr, info.ifname)
                removed.append(f"bridge {info.ifname}")
        return removed
