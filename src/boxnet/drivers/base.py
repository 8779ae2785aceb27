"""The network driver interface: what core asks of a driver, and what a driver may know.

A driver owns one kind of network (bridge, macvlan, host, null) end to end: it validates a create
request into a planned Network, makes and removes that network's kernel objects, plugs an endpoint
(already addressed by core's IPAM) into a container's namespace and unplugs it, declares its
firewall intents, repairs what vanished under a running container and collects the kernel objects
of its own prefix that no record owns.

Compared with libnetwork's driver API (CreateNetwork/CreateEndpoint/Join/Leave/...) and netavark's
driver trait (validate/setup/teardown): validation is split from the kernel work and sees only a
PlanContext of plain data, so it is testable without root; every kernel step takes the change's
Rollback, so a failure undoes exactly what was made; and repair and garbage collection are part of
the contract, so nothing a driver makes can leak past a crash (core/reconcile drives them).

Drivers import only what lies below them (model, errors, faults, ipam, firewall.base, kernel);
never core, api or lan (checked by the import contracts in pyproject.toml).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from boxnet.errors import InvalidArgument
from boxnet.firewall.base import BridgeIntent
from boxnet.ipam.allocator import Occupant
from boxnet.model import Endpoint, IPAddress, IPAMConfig, Network, NetworkRequest

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.cluster.membership import HostMembership
    from boxnet.cluster.store import ClusterStore
    from boxnet.dns import NameEntry


# Interfaces handed over to a runtime that moves them into its sandbox (Docker's remote driver)
# are named HANDOVER_PREFIX + 9 hex until it renames them; back here, they are boxnet's to delete.
HANDOVER_PREFIX = "bxd"


class Rollback(Protocol):
    """txn.Undo as a driver sees it: push the inverse of each step just made."""

    def push(self, description: str, fn: Callable[[], object]) -> None: ...


@dataclass(frozen=True)
class ClusterEnv:
    """The cluster store as drivers of global networks see it (boxnetd --cluster-store)."""

    store: ClusterStore
    advertise: IPv4Address  # this host's underlay address (the VXLAN source)
    membership: HostMembership  # this host's lease: records that must die with the host use it


@dataclass(frozen=True)
class DriverEnv:
    """What every driver is built with (drivers.Drivers builds one instance of each)."""

    ipr: IPRoute  # the daemon's netlink socket (kernel.iproute.OwnedIPRoute)
    # With the firewall on: lets the host's own 127.0.0.1 -> published-port traffic be routed
    # out of a bridge (the firewall drops 127/8 arriving *from* the bridge).
    route_localnet: bool = False
    cluster: ClusterEnv | None = None  # None: no --cluster-store (global networks refused)


class DriverHost(Protocol):
    """What core offers a driver whose networks live beyond this host (drivers that watch a
    cluster store call it from their own threads; core takes its lock)."""

    def sync_networks(self, driver: str, networks: Sequence[Network]) -> None:
        """These are all the networks of driver that exist (cluster-wide): adopt the new ones
        (driver.realise), forget those gone that have no local endpoint."""
        ...

    def local_endpoints(self, driver: str) -> list[tuple[Network, Endpoint, tuple[str, ...]]]:
        """This host's endpoints on driver's networks, with their DNS names."""
        ...

    def remote_names(self, container_id: str, entries: Sequence[NameEntry]) -> None:
        """The resolver's entries of a container on another host (() = it is gone)."""
        ...


@dataclass(frozen=True)
class HostLink:
    """A host interface as validation needs it (kernel.links.LinkInfo has these fields)."""

    index: int
    ifname: str
    kind: str
    master: int | None


@dataclass(frozen=True)
class PlanContext:
    """Everything a driver may consult to validate a request: plain data and two lookups, so
    tests build one without root or a daemon."""

    networks: tuple[Network, ...] = ()  # the networks that exist
    pools: tuple[tuple[IPv4Network, int], ...] = ()  # default-address-pools
    pools6: tuple[tuple[IPv6Network, int], ...] = ()  # for --ipv6 without an IPv6 subnet
    # Address space in use (our networks, the host's addresses and routes): read on demand, it
    # costs a netlink dump that only subnet picking needs.
    occupied: Callable[[], list[Occupant]] = list
    link: Callable[[str], HostLink | None] = lambda _name: None  # a host interface by name
    mtu: int = 1500  # the daemon's default MTU
    host_binding: IPv4Address = IPv4Address("0.0.0.0")  # default host IP for published ports


@dataclass(frozen=True)
class Plan:
    """A validated request: the network to create and what the user should be told."""

    network: Network
    warnings: tuple[str, ...] = field(default_factory=tuple)


class NetworkDriver(ABC):
    """One kind of network. Core holds one instance per driver name (drivers.build)."""

    name: ClassVar[str]
    # False for host and null: a container uses them as its network mode, never as an endpoint.
    joinable: ClassVar[bool] = True
    # Whether its networks may have IPv6 (`--ipv6`); core refuses it for the others.
    ipv6: ClassVar[bool] = False
    # Fault points this driver's changes pass (faults.point), for the crash tests.
    steps: ClassVar[tuple[str, ...]] = ()
    # "local": its networks exist on this host only; "global": on every host of the cluster.
    scope: ClassVar[str] = "local"

    def __init__(self, env: DriverEnv) -> None:
        self.ipr = env.ipr
        self.env = env

    # -- networks -------------------------------------------------------------------------------
    @abstractmethod
    def validate(self, req: NetworkRequest, base: Network, ctx: PlanContext) -> Plan:
        """Check req and plan the network. `base` carries what every network has (id, name,
        created, labels, ...); the plan fills in the rest. No kernel changes."""

    def create(self, net: Network, undo: Rollback) -> Network:
        """Make the network's kernel objects; returns the network as realised."""
        return net

    def delete(self, net: Network) -> None:
        """Remove the network's kernel objects. Idempotent: a crash may have removed some."""
        return None  # nothing to do for drivers without such objects

    def deletes_later(self, net: Network) -> bool:
        """Whether delete_later queues net's kernel objects' deletion instead of delete()."""
        return False

    def delete_later(self, net: Network, then: Callable[[BaseException | None], None]) -> None:
        """Queue delete() (only when deletes_later(net)); `then(error or None)` runs when it
        is done. Anything that needs the names or subnets again waits for it (ipr.settle)."""
        raise NotImplementedError(f"the {self.name} driver deletes networks at once")

    def realise(self, net: Network, undo: Rollback) -> Network:
        """Make this host's kernel objects of a network that already exists elsewhere (a global
        network another host created); local drivers never get here."""
        return self.create(net, undo)

    def retire(self, net: Network) -> None:
        """The user removes net: drop what exists beyond this host (before delete)."""
        return None

    # -- background work (drivers that watch something beyond this host) ----------------------
    def start(self, host: DriverHost) -> None:
        """Called once the daemon is up (after adoption and gc)."""
        return None

    def stop(self) -> None:
        return None

    # -- endpoints ------------------------------------------------------------------------------
    def claim_address(
        self,
        net: Network,
        cfg: IPAMConfig,
        owner: str,
        wanted: IPAddress | None,
        undo: Rollback,
    ) -> IPAddress | None:
        """An address of cfg for owner (a container id) when this driver allocates them itself
        (cluster-wide); None: core's local IPAM does."""
        return None

    def attached(self, net: Network, endpoint: Endpoint, names: tuple[str, ...]) -> None:
        """The endpoint is joined and recorded (names: its DNS names on net)."""
        return None

    def detached(self, net: Network, endpoint: Endpoint) -> None:
        """The endpoint's record is gone (stop, disconnect): release what claim_address and
        attached made. Best effort, never raises for a store that does not answer."""
        return None

    def join(
        self, net: Network, endpoint: Endpoint, primary: bool, netns_path: Path, undo: Rollback
    ) -> Endpoint:
        """Plug an addressed endpoint into the namespace as endpoint.ifname; the primary one
        carries the default route. Returns the endpoint as realised (its MAC, host interface)."""
        raise InvalidArgument(f"cannot attach a container to network {net.name}")

    def hand_over(self, net: Network, endpoint: Endpoint, undo: Rollback) -> Endpoint:
        """Like join, but the endpoint's interface (named endpoint.ifname) stays unconfigured in
        the daemon's own namespace for a runtime to move into its sandbox (Docker's remote
        driver: dockerd moves, renames and addresses it). leave(..., "") removes it."""
        raise InvalidArgument(
            f"network {net.name} (driver {net.driver}) cannot serve Docker's containers",
            hint="use a bridge network",
        )

    def leave(self, net: Network, endpoint: Endpoint, netns_path: str) -> None:
        """Unplug it ("" = its namespace is gone). Idempotent."""
        return None  # nothing to do for drivers without such objects

    def published(self, net: Network, endpoint: Endpoint) -> None:
        """Ports were just published on this endpoint (the bridge turns on hairpin here)."""
        return None  # nothing to do for drivers without such objects

    # -- firewall, repair, garbage collection ---------------------------------------------------
    def firewall(self, net: Network) -> tuple[BridgeIntent, ...]:
        """The neutral firewall intents of this network (firewall/base.py)."""
        return ()

    def repair(
        self, net: Network, endpoint: Endpoint, netns_path: str, present: frozenset[str]
    ) -> str:
        """A running container's endpoint lost a kernel object (present: the host's link
        names): make it again. Returns what was done ("" = nothing was missing)."""
        return ""

    def collect(
        self,
        networks: Sequence[Network],
        endpoints: Sequence[Endpoint],
        present: frozenset[str],
    ) -> list[str]:
        """Delete kernel objects of this driver's prefixes that no record owns; returns them.
        `present` names the host's links (links.link_names(), listed once for every
        collector): pick candidates by name, then ask the kernel about those alone."""
        return []
