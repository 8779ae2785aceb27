"""Networks: the predefined ones (bridge, host, none) and user-defined ones, of any driver.

Generic over drivers (boxnet.drivers): this module checks what every network shares (its name,
the journal, the records, the firewall) and hands the rest to the network's driver.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any

from boxnet import faults
from boxnet.clock import now_rfc3339
from boxnet.drivers import Drivers, NetworkDriver, Plan, PlanContext
from boxnet.drivers.base import HostLink
from boxnet.errors import Conflict, Forbidden, InvalidArgument, NotFound
from boxnet.firewall.base import DnatIntent, FirewallModel
from boxnet.ipam.allocator import DEFAULT_POOLS, Occupant, ula_pool
from boxnet.kernel import addressing, links
from boxnet.model import DEFAULT_BRIDGE_NAME, PREDEFINED_NETWORKS, Network, NetworkRequest
from boxnet.store.records import network_doc
from boxnet.txn import Undo

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.config import DaemonConfig
    from boxnet.firewall.base import FirewallBackend
    from boxnet.store.records import Records

__all__ = ["NetworkRequest", "Networks"]

log = logging.getLogger("boxnet.networks")

# The predefined networks that need no configuration: name -> driver.
FIXED_PREDEFINED = (("host", "host"), ("none", "null"))


class Networks:
    def __init__(
        self,
        records: Records,
        ipr: IPRoute,
        firewall: FirewallBackend | None,
        config: DaemonConfig,
        drivers: Drivers,
    ) -> None:
        self.records = records
        self.ipr = ipr
        self.firewall = firewall
        self.config = config
        self.drivers = drivers

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

    def driver_of(self, net: Network) -> NetworkDriver:
        return self.drivers[net.driver]

    # -- predefined networks -----------------------------------------------------------------------
    def ensure_predefined(self) -> None:
        """Make the records and the kernel match the configuration: it is the truth at every
        start (unlike Docker, an old `bip` is not kept once removed from the file)."""
        existing = {n.name: n for n in self.records.networks() if n.predefined}
        for name, driver in FIXED_PREDEFINED:
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
                self._remove(old)
            return
        base = Network(
            id=old.id if old else secrets.token_hex(32),
            name="bridge",
            driver=self.drivers.bridge.name,
            created=old.created if old else now_rfc3339(),
            predefined=True,
        )
        # The default bridge is not in its own way.
        ctx = self.plan_context(exclude=DEFAULT_BRIDGE_NAME)
        wanted = self.drivers.bridge.default_network(base, self.config, old, ctx)
        if old is not None and old.bridge != wanted.bridge:
            self._remove(old)
        with Undo("set up the default bridge") as undo:
            wanted = self.drivers.bridge.create(wanted, undo)  # idempotent
            undo.commit()
        self.records.put_network(wanted)

    def _remove(self, net: Network) -> None:
        self.driver_of(net).delete(net)
        self.records.delete_network(net.id)

    # -- planning context -----------------------------------------------------------------------
    def pools(self) -> tuple[tuple[IPv4Network, int], ...]:
        """The IPv4 pools of default-address-pools; the built-in ones when it lists none."""
        mine = self.config.default_address_pools
        return tuple((b, n) for b, n in mine if isinstance(b, IPv4Network)) or DEFAULT_POOLS

    def pools6(self) -> tuple[tuple[IPv6Network, int], ...]:
        """The IPv6 pools of default-address-pools, in order; when it lists none, a unique local
        /48 derived from the machine id and the data root (docs/CHOICES.md "IPv6")."""
        mine = self.config.default_address_pools
        given = tuple((b, n) for b, n in mine if isinstance(b, IPv6Network))
        return given or (ula_pool(f"{read_machine_id()} {self.config.data_root}"),)

    def enable_ipv6_forwarding(self) -> None:
        """Containers on IPv6 networks reach beyond their bridge (Docker does the same when a
        network has IPv6). Only with ip-forward on, as for IPv4."""
        if self.config.ip_forward:
            links.set_sysctl("net/ipv6/conf/all/forwarding", "1")

    def occupied(self, exclude_bridge: str | None = None) -> list[Occupant]:
        nets = self.records.networks()
        ours = {n.bridge for n in nets if n.bridge}
        out = [
            Occupant(cfg.subnet, f"network {n.name}")
            for n in nets
            if exclude_bridge is None or n.bridge != exclude_bridge
            for cfg in n.ipam
        ]
        # Our own bridges' addresses and connected routes are the networks themselves.
        for use in addressing.address_space(self.ipr, frozenset(ours | {"lo"})):
            out.append(Occupant(use.network, use.what))
        return out

    def plan_context(self, exclude: str | None = None) -> PlanContext:
        def host_link(name: str) -> HostLink | None:
            info = links.link_info(self.ipr, name)
            return None if info is None else HostLink(info.index, name, info.kind, info.master)

        return PlanContext(
            networks=tuple(self.records.networks()),
            pools=self.pools(),
            pools6=self.pools6(),
            occupied=lambda: self.occupied(exclude_bridge=exclude),
            link=host_link,
            mtu=self.config.mtu,
            host_binding=self.config.ip,
        )

    # -- user networks --------------------------------------------------------------------------
    def create(self, req: NetworkRequest) -> Plan:
        """Create the network; returns it with the warnings for the user (the API's
        "Warning")."""
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
        driver = self.drivers[req.driver]
        check_families(req, driver)
        base = Network(
            id=secrets.token_hex(32),
            name=req.name,
            driver=driver.name,
            created=now_rfc3339(),
            internal=req.internal,
            attachable=req.attachable,
            options=dict(req.options),
            labels=dict(req.labels),
        )
        plan = driver.validate(req, base, self.plan_context())
        net = plan.network
        with Undo(f"create network {req.name}") as undo:
            # The planned network is the undo data: what to delete if no record follows.
            payload = {"name": net.name, "network": network_doc(net)}
            self.records.intents.begin("network.create", net.id, payload, undo)
            net = driver.create(net, undo)
            faults.point("network.create.realised")
            self.records.put_network(net)
            undo.push("delete record", lambda: self.records.delete_network(net.id))
            faults.point("network.create.recorded")
            self.sync_firewall()
            undo.commit()
        if net.family(6) is not None:
            self.enable_ipv6_forwarding()
        return replace(plan, network=net)

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
        driver = self.driver_of(net)
        driver.retire(net)  # beyond this host (a global network's record)
        # The planned network is in the journal: a crash before its kernel objects are gone
        # lets the next start delete them (resolve), whatever the bridge is named.
        payload = {"name": net.name, "network": network_doc(net)}
        intent = self.records.intents.begin("network.rm", net.id, payload)
        if not driver.deletes_later(net):
            self._remove(net)
        else:  # the bridge goes after the answer (drivers/bridge.py), the intent with it
            self.records.delete_network(net.id)
        faults.point("network.rm.forgotten")
        self.sync_firewall()
        if driver.deletes_later(net):
            driver.delete_later(net, lambda failure: self._deleted(net, intent, failure))
        else:
            self.records.intents.done(intent)

    def _deleted(self, net: Network, intent: int, failure: BaseException | None) -> None:
        """A deferred deletion finished (in the netlink owner thread)."""
        if failure is not None:  # the intent stays: the next start retries (resolve)
            log.warning("network rm %s: %s", net.name, failure)
            return
        self.records.intents.done(intent)

    def resolve(self, kind: str, subject: str, payload: dict[str, Any]) -> str:
        """Finish or undo a network change a crash cut short (core/reconcile)."""
        recorded = self.by_id(subject)
        if kind == "network.create":
            if recorded is not None:
                return "finished (recorded)"
            planned = payload.get("network")
            if planned:
                from boxnet.store.records import network_from_doc

                net = network_from_doc(planned)
                self.driver_of(net).delete(net)
            return "undone"
        if kind == "network.rm" and recorded is not None:
            self._remove(recorded)
            return "finished (removed)"
        if kind == "network.rm" and payload.get("network"):  # recorded gone, maybe not its bridge
            from boxnet.store.records import network_from_doc

            gone = network_from_doc(payload["network"])
            self.driver_of(gone).delete(gone)
            return "finished (kernel objects removed)"
        return "finished"

    # -- firewall -------------------------------------------------------------------------------
    def firewall_model(self) -> FirewallModel:
        from ipaddress import ip_address

        bridges = tuple(intent for n in self.all() for intent in self.driver_of(n).firewall(n))
        dnats = tuple(
            DnatIntent(b.host_ip, b.proto, b.host_port, ip_address(ip), b.container_port)
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


def read_machine_id() -> str:
    try:
        with open("/etc/machine-id") as fh:
            return fh.read().strip()
    except OSError:
        return ""  # the data root alone still gives a stable prefix


def check_families(req: NetworkRequest, driver: NetworkDriver) -> None:
    """What is not done yet is refused, never accepted and silently ignored."""
    if not req.ipv4 and not req.ipv6:
        raise InvalidArgument(
            "a network needs an address family: --ipv4=false (EnableIPv4) without --ipv6",
            hint="add --ipv6 for an IPv6-only network, or leave out --ipv4=false",
        )
    if not req.ipv4 and (req.subnet is not None or req.gateway is not None or req.ip_range):
        raise InvalidArgument(
            f"IPv4 addressing ({req.subnet or req.gateway or req.ip_range}) given for a network"
            " without IPv4 (--ipv4=false)",
            hint="leave out the IPv4 --subnet/--gateway/--ip-range, or --ipv4=false",
        )
    if req.ipam6 is not None and not req.ipv6:
        raise InvalidArgument(
            f"IPv6 subnet {req.ipam6.subnet} given but IPv6 is not enabled on the network",
            hint="add --ipv6 (EnableIPv6), or give an IPv4 --subnet",
        )
    if req.ipv6 and not driver.ipv6:
        raise InvalidArgument(
            f"IPv6 networks of the {driver.name} driver are not supported yet:"
            " --ipv6 (EnableIPv6) would be ignored",
            hint="use the bridge driver for IPv6, or leave out --ipv6",
        )
