"""The `overlay` driver: one network across the hosts of a cluster, VXLAN over the underlay.

The network's definition (name, id, subnet, VNI) lives in the cluster store (cluster/networks.py)
and every host makes the same data plane for it: a bridge `ov-<id12>` carrying the network's
gateway address (the same one on every host: each host is its containers' local gateway, so
outside traffic, masquerade and published ports work as on a bridge network, through the bridge
driver's firewall intents) and a VXLAN device `vx-<vni>` enslaved to it (no learning, no
multicast, dstport 4789, local = the advertise address). MTU: the underlay's minus 50, on the
VXLAN device, the bridge and the containers' veths. Addresses are claimed cluster-wide with etcd
transactions (cluster/allocate.py); endpoints are published under the host's lease and turned
into FDB and neighbour entries on the other hosts by the agent (overlay_agent.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from boxnet import faults
from boxnet.cluster import allocate
from boxnet.cluster.endpoints import ENDPOINTS_PREFIX, EndpointRecord
from boxnet.cluster.networks import (
    OverlayNetwork,
    create_network,
    find_network,
    remove_network,
)
from boxnet.drivers.base import (
    ClusterEnv,
    DriverEnv,
    DriverHost,
    Plan,
    PlanContext,
    Rollback,
)
from boxnet.drivers.bridge import BridgeDriver
from boxnet.drivers.overlay_agent import OverlayAgent
from boxnet.errors import Conflict, InvalidArgument, Unavailable
from boxnet.ipam.allocator import check_subnet_free
from boxnet.kernel import addressing, links, vxlan
from boxnet.model import (
    OPT_BRIDGE_NAME,
    Endpoint,
    IPAddress,
    IPAMConfig,
    Network,
    NetworkRequest,
)

log = logging.getLogger("boxnet.drivers.overlay")

OVERLAY_PREFIX = "ov-"  # + 12 hex digits of the network id
OPT_VNI = "com.docker.network.driver.overlay.vxlanid_list"  # Docker's name, shown by inspect
OPT_ENCRYPTED = "encrypted"
# Docker swarm's default address pool for overlay networks: 10.0.0.0/8 in /24s.
OVERLAY_POOLS = ((IPv4Network("10.0.0.0/8"), 24),)


def _no_cluster() -> InvalidArgument:
    return InvalidArgument(
        "overlay networks need a cluster store, and this boxnetd has none",
        hint="start boxnetd with --cluster-store etcd://HOST:2379 --cluster-advertise ADDRESS"
        " on every host",
    )


class OverlayDriver(BridgeDriver):
    name = "overlay"
    ipv6 = False  # refused by core (check_families) with the driver's name
    scope = "global"
    # Its joins pass the bridge driver's point (counted there); this one is its own.
    steps = ("overlay.create.claimed",)
    defer_delete = False  # the VXLAN device and the agent go with the bridge, at once

    def __init__(self, env: DriverEnv) -> None:
        super().__init__(env)
        self.agent = OverlayAgent(env) if env.cluster is not None else None

    def _cluster(self) -> ClusterEnv:
        if self.env.cluster is None:
            raise _no_cluster()
        return self.env.cluster

    # -- networks -------------------------------------------------------------------------------
    def validate(self, req: NetworkRequest, base: Network, ctx: PlanContext) -> Plan:
        self._cluster()
        if OPT_ENCRYPTED in req.options:
            raise InvalidArgument(
                "encrypted overlay networks (-o encrypted) are not supported: boxnet would need"
                " IPsec (xfrm) tunnels per pair of hosts, and this kernel has no WireGuard",
                hint="leave out -o encrypted; encrypt at the application (TLS) or the underlay",
            )
        unknown = set(req.options) - {OPT_BRIDGE_NAME}
        if unknown:
            raise InvalidArgument(f"unknown overlay option {sorted(unknown)[0]!r}")
        if req.ip_range is not None or req.aux_addresses:
            raise InvalidArgument(
                "--ip-range and --aux-address are not supported on overlay networks",
                hint="give --subnet only: addresses are allocated cluster-wide",
            )
        if req.subnet is not None:
            check_subnet_free(req.subnet, ctx.occupied())
            first = next(req.subnet.hosts(), None)
            if req.gateway is not None and req.gateway != first:
                raise InvalidArgument(
                    f"the gateway of an overlay network is its first address ({first})",
                    hint="leave out --gateway: every host's bridge carries that address",
                )
        elif req.gateway is not None:
            raise InvalidArgument("--gateway needs --subnet")
        ipam: tuple[IPAMConfig, ...] = ()
        if req.subnet is not None:
            ipam = (IPAMConfig(req.subnet, next(req.subnet.hosts())),)
        bridge = f"{OVERLAY_PREFIX}{base.id[:12]}"
        net = replace(base, ipam=ipam, bridge=bridge, managed_bridge=True, options={})
        return Plan(net)

    def create(self, net: Network, undo: Rollback) -> Network:
        cluster = self._cluster()
        requested = net.ipam[0].subnet if net.ipam else None
        assert requested is None or isinstance(requested, IPv4Network)
        # This host's own address space is avoided too (it cannot know the other hosts').
        avoid = [
            use.network for use in addressing.address_space(self.ipr) if use.network.version == 4
        ]
        record = create_network(
            cluster.store,
            net.id,
            net.name,
            str(cluster.advertise),
            OVERLAY_POOLS,
            requested,
            created=net.created,
            attachable=net.attachable,
            internal=net.internal,
            avoid=[a for a in avoid if isinstance(a, IPv4Network) and a.prefixlen > 0],
        )
        undo.push("remove from the cluster store", lambda: remove_network(cluster.store, net.name))
        # A crash from here on leaves the network in the cluster: the restarted daemon undoes
        # the local half (the journal's planned network) and adopts it back from the store.
        faults.point("overlay.create.claimed")
        realised = self.realise(replace(self.from_record(record), labels=net.labels), undo)
        return realised

    def from_record(self, record: OverlayNetwork) -> Network:
        """The local record of a cluster network (the same on every host but for the MTU)."""
        subnet = IPv4Network(record.subnet)
        return Network(
            id=record.id,
            name=record.name,
            driver=self.name,
            created=record.created,
            ipam=(IPAMConfig(subnet, IPv4Address(record.gateway)),),
            bridge=f"{OVERLAY_PREFIX}{record.id[:12]}",
            internal=record.internal,
            attachable=record.attachable,
            masquerade=not record.internal,
            options={OPT_VNI: str(record.vni)},
        )

    def cluster_network(self, name: str) -> Network | None:
        """The cluster's overlay network of that name, read now (not through the watcher, which
        may not have brought it here yet), or None."""
        if self.env.cluster is None:
            return None
        record = find_network(self.env.cluster.store, name)
        return self.from_record(record) if record is not None else None

    def realise(self, net: Network, undo: Rollback) -> Network:
        cluster = self._cluster()
        mtu = vxlan.underlay_mtu(self.ipr, cluster.advertise) - vxlan.VXLAN_OVERHEAD
        net = replace(net, mtu=mtu)
        net = super().create(net, undo)  # the bridge and its gateway address
        bridge = links.link_info(self.ipr, net.bridge or "")
        assert bridge is not None
        vni = vni_of(net)
        vxlan.ensure_vxlan(self.ipr, vxlan.VxlanPlan(vni, cluster.advertise, mtu, bridge.index))
        undo.push("delete VXLAN device", lambda: vxlan.delete_vxlan(self.ipr, vni))
        if self.agent is not None:
            self.agent.program_network(net.id, vni)
        return net

    def delete(self, net: Network) -> None:
        if OPT_VNI in net.options:
            if self.agent is not None:
                self.agent.forget_network(vni_of(net))
            vxlan.delete_vxlan(self.ipr, vni_of(net))
        super().delete(net)

    def retire(self, net: Network) -> None:
        cluster = self._cluster()
        records, _ = cluster.store.get_prefix(f"{ENDPOINTS_PREFIX}{net.id}/")
        elsewhere = sorted(
            {EndpointRecord.from_json(kv.value).host for kv in records} - {str(cluster.advertise)}
        )
        if elsewhere:
            raise Conflict(
                f"error while removing network: network {net.name} id {net.id} has active"
                f" endpoints on {', '.join(elsewhere)}",
                hint="remove or disconnect the containers on those hosts first",
            )
        remove_network(cluster.store, net.name)

    # -- endpoints ------------------------------------------------------------------------------
    def claim_address(
        self,
        net: Network,
        cfg: IPAMConfig,
        owner: str,
        wanted: IPAddress | None,
        undo: Rollback,
    ) -> IPAddress | None:
        cluster = self._cluster()
        subnet = cfg.subnet
        assert isinstance(subnet, IPv4Network)
        if wanted is not None and not isinstance(wanted, IPv4Address):
            raise InvalidArgument(f"overlay network {net.name} has no IPv6 for {wanted}")
        who = f"{cluster.advertise}/{owner}"
        ip = allocate.claim_address(cluster.store, net.id, subnet, who, wanted)
        undo.push(
            "release the address", lambda: allocate.release_address(cluster.store, net.id, ip)
        )
        return ip

    def _who(self, owner: str) -> str:
        return f"{self._cluster().advertise}/{owner}"

    # Docker's remote IPAM (core/dockeripam.py) claims before the endpoint exists: under a
    # provisional owner, handed to the endpoint's owner when it comes (claim_address then finds
    # the address already its own), or released by ReleaseAddress if it never comes.
    # A provisional claim carries when it was made, so that this host can expire it
    # (expire_reserved) when the endpoint never comes (dockerd died in between).
    def reserve_address(
        self, net: Network, owner: str, wanted: IPv4Address | None, now: float
    ) -> IPv4Address:
        cfg = net.family(4)
        if cfg is None or not isinstance(cfg.subnet, IPv4Network):
            raise InvalidArgument(f"overlay network {net.name} has no IPv4 subnet")
        store = self._cluster().store
        value = allocate.stamped(self._who(owner), now)
        return allocate.claim_address(store, net.id, cfg.subnet, value, wanted)

    def expire_reserved(
        self, owner: str, now: float, grace: float, limit: int
    ) -> list[allocate.Claim]:
        """Release this host's claims for owner made grace seconds or more before now, each only
        if unchanged since read (a transfer meanwhile wins); the ones released. Without a
        cluster store: none."""
        if self.env.cluster is None:
            return []
        store = self.env.cluster.store
        expired = allocate.expired_claims(store, self._who(owner), now, grace, limit)
        return [claim for claim in expired if allocate.release_claim(store, claim)]

    def transfer_address(self, net: Network, ip: IPv4Address, old: str, new: str) -> bool:
        store = self._cluster().store
        return allocate.transfer_address(store, net.id, ip, self._who(old), self._who(new))

    def release_reserved(self, net: Network, ip: IPv4Address, owner: str) -> None:
        allocate.release_address_of(self._cluster().store, net.id, ip, self._who(owner))

    def attached(self, net: Network, endpoint: Endpoint, names: tuple[str, ...]) -> None:
        if self.agent is not None:
            record = self._record(net, endpoint, names)
            self.agent.take_mac(record)
            self.agent.publish(record)

    def detached(self, net: Network, endpoint: Endpoint) -> None:
        if self.agent is not None:
            self.agent.withdraw(self._record(net, endpoint, ()), release_ip=True)

    def _record(self, net: Network, endpoint: Endpoint, names: tuple[str, ...]) -> EndpointRecord:
        return EndpointRecord(
            network_id=net.id,
            endpoint_id=endpoint.id,
            vni=vni_of(net),
            ip=str(endpoint.ip),
            mac=endpoint.mac,
            host=str(self._cluster().advertise),
            container_id=endpoint.container_id,
            names=names,
        )

    # -- background -----------------------------------------------------------------------------
    def start(self, host: DriverHost) -> None:
        if self.agent is not None:
            self.agent.start(host, self)

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()

    # -- garbage collection ---------------------------------------------------------------------
    def collect(
        self,
        networks: Sequence[Network],
        endpoints: Sequence[Endpoint],
        present: frozenset[str],
    ) -> list[str]:
        """ov- bridges and vx- devices no overlay network record owns (veths in ov- bridges
        are the bridge driver's to collect: it sees every network's bridge)."""
        ours = [n for n in networks if n.driver == self.name]
        owned = {n.bridge for n in ours} | {
            vxlan.vxlan_name(vni_of(n)) for n in ours if OPT_VNI in n.options
        }
        candidates = [
            name
            for name in present
            if name.startswith((OVERLAY_PREFIX, vxlan.VXLAN_PREFIX)) and name not in owned
        ]
        removed = []
        for name in candidates:
            info = links.link_info(self.ipr, name)
            if info is None or info.kind not in ("bridge", "vxlan"):
                continue  # a user's interface that merely shares the prefix
            links.delete_link(self.ipr, name)
            removed.append(f"{info.kind} {name}")
        return removed


def vni_of(net: Network) -> int:
    try:
        return int(net.options[OPT_VNI])
    except (KeyError, ValueError):
        raise Unavailable(f"overlay network {net.name} has no VNI in its record") from None
