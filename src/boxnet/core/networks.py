"""Networks: the predefined ones (bridge, host, none) and user-defined bridge networks."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import TYPE_CHECKING, Any

from boxnet.core import faults
from boxnet.core.clock import now_rfc3339
from boxnet.core.txn import Undo
from boxnet.errors import Conflict, Forbidden, InvalidArgument, NotFound
from boxnet.firewall.base import BridgeIntent, DnatIntent, FirewallModel
from boxnet.ipam.allocator import (
    DEFAULT_POOLS,
    Occupant,
    check_subnet_free,
    first_host,
    pick_subnet,
)
from boxnet.kernel import links
from boxnet.model import (
    DEFAULT_BRIDGE_NAME,
    OPT_BRIDGE_NAME,
    OPT_HOST_BINDING,
    OPT_ICC,
    OPT_MASQ,
    OPT_MTU,
    PREDEFINED_NETWORKS,
    Driver,
    Network,
)

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.config import DaemonConfig
    from boxnet.firewall.base import FirewallBackend
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.networks")

OPT_DEFAULT_GATEWAY = "boxnet.default_gateway"
KNOWN_BRIDGE_OPTIONS = {OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQ, OPT_HOST_BINDING, OPT_MTU}


@dataclass(frozen=True)
class NetworkRequest:
    name: str
    driver: str = "bridge"
    subnet: IPv4Network | None = None
    gateway: IPv4Address | None = None
    ip_range: IPv4Network | None = None
    aux_addresses: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    ipv6: bool = False
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def _bool_option(options: dict[str, str], key: str, default: bool) -> bool:
    value = options.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"invalid value {value!r} for option {key}: expected true or false")


class Networks:
    def __init__(
        self,
        records: Records,
        ipr: IPRoute,
        firewall: FirewallBackend | None,
        config: DaemonConfig,
    ) -> None:
        self.records = records
        self.ipr = ipr
        self.firewall = firewall
        self.config = config
        self.last_warning = ""  # of the last create(), for the API's "Warning" field

    # -- lookup ---------------------------------------------------------------------------------
    def all(self) -> list[Network]:
        return sorted(self.records.networks(), key=lambda n: n.created)

    def find(self, ref: str) -> Network:
        nets = self.records.networks()
        for net in nets:
            if ref in (net.name, net.id):
                return net
        matches = [n for n in nets if len(ref) >= 1 and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"network {ref} not found", hint="boxnet network ls lists the networks")

    def by_id(self, network_id: str) -> Network | None:
        return next((n for n in self.records.networks() if n.id == network_id), None)

    # -- predefined networks -----------------------------------------------------------------------
    def ensure_predefined(self) -> None:
        """Make the records and the kernel match the configuration: it is the truth at every
        start (unlike Docker, an old `bip` is not kept once removed from the file)."""
        existing = {n.name: n for n in self.records.networks() if n.predefined}
        for name, driver in (("host", Driver.HOST), ("none", Driver.NULL)):
            if name not in existing:
                self.records.put_network(
                    Network(
                        id=secrets.token_hex(32),
                        name=name,
                        driver=driver,
                        created=now_rfc3339(),
                        predefined=True,
                    )
                )
        old = existing.get("bridge")
        if self.config.bridge == "none":
            if old is not None:
                self._remove_bridge_network(old)
            return
        wanted = self._default_bridge(old)
        if old is not None and old.bridge != wanted.bridge:
            self._remove_bridge_network(old)
        self._realise_bridge(wanted, previous=old)
        self.records.put_network(wanted)

    def _default_bridge(self, old: Network | None) -> Network:
        cfg = self.config
        net_id = old.id if old else secrets.token_hex(32)
        created = old.created if old else now_rfc3339()
        options = {OPT_BRIDGE_NAME: cfg.bridge or DEFAULT_BRIDGE_NAME}
        if cfg.default_gateway is not None:
            options[OPT_DEFAULT_GATEWAY] = str(cfg.default_gateway)
        base = dict(
            id=net_id,
            name="bridge",
            driver=Driver.BRIDGE,
            created=created,
            icc=cfg.icc,
            masquerade=cfg.ip_masq,
            mtu=cfg.mtu,
            host_binding=cfg.ip,
            predefined=True,
            options=options,
        )
        if cfg.bridge:
            # A user's bridge: use the address it already has; never create or delete it.
            info = links.link_info(self.ipr, cfg.bridge)
            if info is None:
                raise NotFound(
                    f"bridge {cfg.bridge} (from --bridge) does not exist",
                    hint=f"create it first (ip link add {cfg.bridge} type bridge) and give it an"
                    " address, or drop the bridge option",
                )
            addrs = links.addresses(self.ipr, info.index)
            if not addrs:
                raise InvalidArgument(
                    f"bridge {cfg.bridge} (from --bridge) has no IPv4 address",
                    hint=f"add one: ip addr add 10.10.10.1/24 dev {cfg.bridge}",
                )
            iface = addrs[0]
            return Network(
                **base,  # type: ignore[arg-type]
                subnet=iface.network,
                gateway=iface.ip,
                ip_range=cfg.fixed_cidr,
                bridge=cfg.bridge,
                managed_bridge=False,
            )
        if cfg.bip is not None:
            iface = cfg.bip
        else:
            iface = self._free_default_bip(old)
        return Network(
            **base,  # type: ignore[arg-type]
            subnet=iface.network,
            gateway=iface.ip,
            ip_range=cfg.fixed_cidr,
            bridge=DEFAULT_BRIDGE_NAME,
        )

    def _free_default_bip(self, old: Network | None) -> IPv4Interface:
        preferred = IPv4Interface("172.17.0.1/16")
        occupied = self.occupied(exclude_bridge=DEFAULT_BRIDGE_NAME)
        if not any(o.network.overlaps(preferred.network) for o in occupied):
            return preferred
        if old is not None and old.gateway_interface is not None:
            iface = old.gateway_interface
            if not any(o.network.overlaps(iface.network) for o in occupied):
                return iface
        subnet, skipped = pick_subnet(self.pools(), occupied)
        log.warning(
            "default bridge: 172.17.0.0/16 is in use (%s); using %s instead",
            "; ".join(skipped[:3]),
            subnet,
        )
        return IPv4Interface(f"{first_host(subnet)}/{subnet.prefixlen}")

    # -- kernel side of a bridge network ---------------------------------------------------------
    def _realise_bridge(self, net: Network, previous: Network | None = None) -> None:
        assert net.bridge is not None
        if net.managed_bridge:
            index = links.ensure_bridge(self.ipr, net.bridge, net.mtu)
            wanted = net.gateway_interface
            for iface in links.addresses(self.ipr, index):
                if iface != wanted:  # a stale bip from an earlier configuration
                    links.remove_address(self.ipr, index, iface)
            if wanted is not None:
                links.ensure_address(self.ipr, index, wanted)
        if self.config.iptables:
            # Lets the host's own 127.0.0.1 -> published-port traffic be routed out of this
            # bridge; the firewall drops 127/8 arriving *from* the bridge (see firewall docs).
            links.set_sysctl(f"net/ipv4/conf/{net.bridge}/route_localnet", "1")

    def _remove_bridge_network(self, net: Network) -> None:
        if net.bridge and net.managed_bridge:
            links.delete_link(self.ipr, net.bridge)
        self.records.delete_network(net.id)

    # -- user networks --------------------------------------------------------------------------
    def pools(self) -> tuple[tuple[IPv4Network, int], ...]:
        return tuple(self.config.default_address_pools) or DEFAULT_POOLS

    def occupied(self, exclude_bridge: str | None = None) -> list[Occupant]:
        ours = {n.bridge for n in self.records.networks() if n.bridge}
        out = [
            Occupant(n.subnet, f"network {n.name}")
            for n in self.records.networks()
            if n.subnet is not None and n.bridge != exclude_bridge
        ]
        for ifname, iface in links.all_ipv4_addresses(self.ipr):
            if ifname in ours or ifname == "lo":
                continue
            out.append(Occupant(iface.network, f"the address {iface} of {ifname}"))
        for route, oif in links.ipv4_routes(self.ipr):
            # Our own bridges' connected routes are not someone else's address space.
            if route.prefixlen == 0 or route.is_loopback or oif in ours:
                continue
            out.append(Occupant(route, f"a route to {route}"))
        return out

    def create(self, req: NetworkRequest) -> Network:
        if req.name in PREDEFINED_NETWORKS:
            raise Forbidden(
                f"{req.name} is a pre-defined network and cannot be created",
                hint="choose another name",
            )
        if any(n.name == req.name for n in self.records.networks()):
            raise Conflict(
                f"network with name {req.name} already exists",
                hint="choose another name, or remove it first (boxnet network rm)",
            )
        if req.driver == "macvlan":
            from boxnet.lan import macvlan

            return macvlan.create(self, req)
        if req.driver != "bridge":
            raise InvalidArgument(
                f"network driver {req.driver!r} is not supported yet",
                hint="use -d bridge or -d macvlan (overlay comes later)",
            )
        self.last_warning = ""
        net = self._plan_bridge_network(req)
        with Undo(f"create network {req.name}") as undo:
            self.records.intents.begin("network.create", net.id, {"name": net.name}, undo)
            self._realise_bridge(net)
            if net.managed_bridge:
                undo.push("delete bridge", lambda: links.delete_link(self.ipr, net.bridge or ""))
            faults.point("network.create.bridge")
            self.records.put_network(net)
            undo.push("delete record", lambda: self.records.delete_network(net.id))
            faults.point("network.create.recorded")
            self.sync_firewall()
            undo.commit()
        return net

    def _plan_bridge_network(self, req: NetworkRequest) -> Network:
        unknown = set(req.options) - KNOWN_BRIDGE_OPTIONS
        if unknown:
            raise InvalidArgument(
                f"unknown bridge option {sorted(unknown)[0]!r}",
                hint="known options: " + ", ".join(sorted(KNOWN_BRIDGE_OPTIONS)),
            )
        occupied = self.occupied()
        if req.subnet is not None:
            check_subnet_free(req.subnet, occupied)
            subnet = req.subnet
        else:
            subnet, skipped = pick_subnet(self.pools(), occupied)
            if skipped:
                log.info("network %s: skipped %s", req.name, "; ".join(skipped[:5]))
            # Subnets skipped for the host's own routes/addresses are worth telling the user
            # (they explain a surprising subnet); skipping our own networks is routine.
            foreign = [s for s in skipped if "overlaps network " not in s]
            if foreign:
                self.last_warning = "skipped " + "; ".join(foreign[:3])
        gateway = req.gateway or first_host(subnet)
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(
                f"invalid gateway {gateway}: it must be a host address inside {subnet}"
            )
        if req.ip_range is not None and not req.ip_range.subnet_of(subnet):
            raise InvalidArgument(f"invalid --ip-range {req.ip_range}: not inside {subnet}")
        for name, addr in req.aux_addresses.items():
            if IPv4Address(addr) not in subnet:
                raise InvalidArgument(f"invalid --aux-address {name}={addr}: not inside {subnet}")
        net_id = secrets.token_hex(32)
        bridge = req.options.get(OPT_BRIDGE_NAME) or f"br-{net_id[:12]}"
        # A user-chosen name reaches the kernel and nft rules: validate it before either.
        from boxnet.parsing.names import validate_ifname

        validate_ifname(bridge)
        if not all(ch.isalnum() or ch in "_.-" for ch in bridge) or not bridge[0].isalnum():
            raise InvalidArgument(
                f"invalid bridge name {bridge!r}: use letters, digits, '_', '.' and '-'",
                hint="e.g. -o com.docker.network.bridge.name=br-lan0",
            )
        if any(n.bridge == bridge for n in self.records.networks()):
            raise Conflict(f"bridge name {bridge} is already used by another network")
        mtu = int(req.options.get(OPT_MTU, self.config.mtu))
        if not 68 <= mtu <= 65535:
            raise InvalidArgument(f"invalid MTU {mtu}: must be between 68 and 65535")
        host_binding = IPv4Address(req.options.get(OPT_HOST_BINDING, str(self.config.ip)))
        return Network(
            id=net_id,
            name=req.name,
            driver=Driver.BRIDGE,
            created=now_rfc3339(),
            subnet=subnet,
            gateway=gateway,
            ip_range=req.ip_range,
            aux_addresses=dict(req.aux_addresses),
            bridge=bridge,
            managed_bridge=True,
            internal=req.internal,
            attachable=req.attachable,
            ipv6=req.ipv6,
            icc=_bool_option(req.options, OPT_ICC, True),
            masquerade=_bool_option(req.options, OPT_MASQ, True),
            mtu=mtu,
            host_binding=host_binding,
            options=dict(req.options),
            labels=dict(req.labels),
        )

    def remove(self, ref: str) -> None:
        net = self.find(ref)
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        users = self.records.endpoints(network_id=net.id)
        if users:
            raise Conflict(
                f"error while removing network: network {net.name} id {net.id} has active"
                " endpoints",
                hint="disconnect or remove its containers first",
            )
        intent = self.records.intents.begin("network.rm", net.id, {"name": net.name})
        if net.driver == Driver.MACVLAN:
            from boxnet.lan import macvlan

            macvlan.remove(self, net)
        else:
            self._remove_bridge_network(net)
        self.sync_firewall()
        self.records.intents.done(intent)

    # -- firewall -------------------------------------------------------------------------------
    def firewall_model(self) -> FirewallModel:
        bridges = tuple(
            BridgeIntent(
                bridge=n.bridge,
                subnet=n.subnet,
                masquerade=n.masquerade,
                internal=n.internal,
                icc=n.icc,
            )
            for n in self.all()
            if n.driver == Driver.BRIDGE and n.bridge and n.subnet
        )
        dnats = tuple(
            DnatIntent(b.host_ip, b.proto, b.host_port, IPv4Address(ip), b.container_port)
            for _cid, b, ip in self.records.ports()
        )
        return FirewallModel(bridges=bridges, dnats=dnats)

    def sync_firewall(self) -> None:
        if self.firewall is not None:
            self.firewall.rebuild(self.firewall_model())

    def update(self, net: Network, **changes: Any) -> Network:
        new = replace(net, **changes)
        self.records.put_network(new)
        return new
