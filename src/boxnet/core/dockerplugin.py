"""Docker's remote network driver, boxnet's side (issue 18, part 2): `docker network create -d
boxnet` networks are boxnet bridge networks, Docker's containers boxnet endpoints.

libnetwork's model differs from CNI's: dockerd's IPAM picks the addresses (CreateNetwork brings
the pool and gateway, CreateEndpoint the container's address), and the driver makes an interface
in its own namespace that dockerd moves into the sandbox, renames (eth0, ...) and addresses
itself. So an endpoint is an external attachment (core/external.py) whose interface is *handed
over* (netns ""): the same records, IPAM leases (Docker's address, taken as a static one), DNAT
maps for published ports and isolation as boxnet's own containers; its lifetime is Docker's
(DeleteEndpoint), not a namespace's. The api side is api/routes_dockerplugin.py.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import TYPE_CHECKING

from boxnet.core.dockeripam import DockerIpam
from boxnet.core.external import ExternalRequest, ExternalResult, owner_id
from boxnet.drivers.base import HANDOVER_PREFIX
from boxnet.drivers.overlay import OverlayDriver
from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.model import IPAMConfig, Network, NetworkRequest, PortRequest
from boxnet.store.docker_networks import DockerNetwork, DockerNetworks
from boxnet.txn import Undo

if TYPE_CHECKING:
    from boxnet.core.external import ExternalAttachments
    from boxnet.core.networks import Networks
    from boxnet.core.sandbox import Sandboxes
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.dockerplugin")

KIND = "docker"
OPT_NETWORK = "boxnet.network"  # -o boxnet.network=NAME: the boxnet network to adopt or make
OPT_DRIVER = "boxnet.driver"  # -o boxnet.driver=macvlan: the driver of a network made for Docker
DRIVERS = ("bridge", "macvlan", "overlay")  # the drivers that can hand an interface over
OVERLAY = "overlay"


@dataclass(frozen=True)
class DockerNetworkRequest:
    docker_id: str
    pool: IPv4Network  # IPv4Data[0].Pool from Docker's IPAM
    gateway: IPv4Address | None  # IPv4Data[0].Gateway
    aux: dict[str, str]
    options: dict[str, str]  # `docker network create -o` (com.docker.network.generic)
    internal: bool = False
    pool6: IPv6Network | None = None  # IPv6Data[0] (`docker network create --ipv6`)
    gateway6: IPv6Address | None = None


def peer_name(endpoint_id: str) -> str:
    """The interface handed to dockerd: a name per Docker endpoint (15 characters at most)."""
    return HANDOVER_PREFIX + hashlib.sha256(endpoint_id.encode()).hexdigest()[:9]


class DockerPlugin:
    def __init__(
        self,
        external: ExternalAttachments,
        networks: Networks,
        sandboxes: Sandboxes,
        records: Records,
        table: DockerNetworks,
    ) -> None:
        self.external = external
        self.networks = networks
        self.sandboxes = sandboxes
        self.records = records
        self.table = table
        self.ipam = DockerIpam(networks, records)  # --ipam-driver boxnet (core/dockeripam.py)

    # -- networks --------------------------------------------------------------------------------
    def create_network(self, req: DockerNetworkRequest) -> Network:
        """Create (or adopt, with -o boxnet.network=NAME) the boxnet network behind Docker's.
        Repeated for the same id (dockerd retries) it answers the network made before."""
        known = self.table.get(req.docker_id)
        if known is not None and self.networks.by_id(known.network_id) is not None:
            net = self.networks.by_id(known.network_id)
            assert net is not None
            return net
        options = dict(req.options)
        name = options.pop(OPT_NETWORK, "") or f"docker-{req.docker_id[:12]}"
        driver = options.pop(OPT_DRIVER, "bridge")
        if driver not in DRIVERS:
            raise InvalidArgument(
                f"-o {OPT_DRIVER}={driver}: Docker's containers can use boxnet's "
                + ", ".join(DRIVERS)
                + " networks",
                hint=f"-o {OPT_DRIVER}=bridge (the default), macvlan with -o parent=NIC,"
                f" or overlay with -o {OPT_NETWORK}=NAME --ipam-driver boxnet",
            )
        if driver == OVERLAY:
            self._check_overlay(req)
        try:
            existing: Network | None = self.networks.find(name)
        except NotFound:
            existing = self._adopt_overlay(name) if driver == OVERLAY else None
        if existing is not None:
            return self._adopt(existing, req)
        request = NetworkRequest(
            name=name,
            driver=driver,
            subnet=req.pool,
            gateway=req.gateway,
            aux_addresses=dict(req.aux),
            internal=req.internal,
            ipv6=req.pool6 is not None,
            ipam6=IPAMConfig(req.pool6, req.gateway6) if req.pool6 is not None else None,
            options=options,
            labels={"boxnet.created-by": KIND, "boxnet.docker.network-id": req.docker_id},
        )
        with Undo(f"create network {name} for Docker") as undo:
            try:
                net = self.networks.create(request).network
            except Conflict:
                # Another host made the overlay (name or subnet) a moment before: adopt it.
                made = self._adopt_overlay(name) if driver == OVERLAY else None
                if made is None:
                    raise
                log.info("overlay %s was made by another host meanwhile: adopted", name)
                return self._adopt(made, req)
            undo.push("remove network", lambda: self.networks.remove(net.id))
            self.table.put(DockerNetwork(req.docker_id, net.id, created=True))
            undo.commit()
        self.ipam.created(req.pool)
        return net

    def _adopt(self, existing: Network, req: DockerNetworkRequest) -> Network:
        if existing.driver == OVERLAY:
            self._check_overlay(req)
        self._check_adoptable(existing, req)
        self.table.put(DockerNetwork(req.docker_id, existing.id, created=False))
        self.ipam.created(req.pool)
        return existing

    def _adopt_overlay(self, name: str) -> Network | None:
        """Another host made the overlay and this boxnetd's watcher has not brought it here yet
        (both hosts ran `docker network create` at once): adopt it now, as the watcher would."""
        driver = self.networks.drivers[OVERLAY]
        net = driver.cluster_network(name) if isinstance(driver, OverlayDriver) else None
        if net is None:
            return None
        with Undo(f"adopt cluster network {name}") as undo:
            realised = driver.realise(net, undo)
            self.records.put_network(realised)
            undo.commit()
        self.networks.sync_firewall()
        return realised

    def _check_overlay(self, req: DockerNetworkRequest) -> None:
        """An overlay is one network on every host: Docker's network on each host must name it
        (CreateNetwork carries Docker's id, which differs per host, not its name), and its
        addresses must come from boxnet's IPAM (Docker's is per host: two hosts would both hand
        out the subnet's first address)."""
        if OPT_NETWORK not in req.options:
            raise InvalidArgument(
                "a Docker network on a boxnet overlay must name it: the same name on every host",
                hint=f"-o {OPT_NETWORK}=NAME (the overlay is made by the first host, adopted by"
                " the others)",
            )
        if not self.ipam.handed_out(req.pool):
            raise InvalidArgument(
                "a Docker network on a boxnet overlay needs boxnet's IPAM: Docker's own hands"
                " out addresses per host, so two hosts would give the same one",
                hint="add --ipam-driver boxnet",
            )

    @staticmethod
    def _check_adoptable(net: Network, req: DockerNetworkRequest) -> None:
        cfg = net.family(4)
        if net.driver not in DRIVERS or cfg is None:
            raise InvalidArgument(
                f"boxnet network {net.name} (driver {net.driver}) cannot serve Docker",
                hint="name a bridge network with -o boxnet.network=NAME, or leave it out",
            )
        overlay = (
            f" -o {OPT_DRIVER}={OVERLAY} --ipam-driver boxnet" if net.driver == OVERLAY else ""
        )
        cfg6 = net.family(6)
        if (cfg6.subnet if cfg6 is not None else None) != req.pool6:
            raise Conflict(
                f"boxnet network {net.name} has IPv6 {cfg6.subnet if cfg6 else 'none'}; Docker's"
                f" IPAM gave {req.pool6 or 'none'}",
                hint="give Docker's network the same --ipv6 --subnet as boxnet's, or none",
            )
        if cfg.subnet != req.pool or (req.gateway is not None and cfg.gateway != req.gateway):
            raise Conflict(
                f"boxnet network {net.name} has {cfg.subnet} gateway {cfg.gateway}; Docker's"
                f" IPAM gave {req.pool} gateway {req.gateway}",
                hint=f"docker network create -d boxnet --subnet {cfg.subnet} --gateway"
                f" {cfg.gateway} -o {OPT_NETWORK}={net.name}{overlay} NAME",
            )

    def delete_network(self, docker_id: str) -> None:
        """Remove the network if the plugin made it; forget the pairing. Idempotent."""
        known = self.table.get(docker_id)
        if known is None:
            return
        if known.created and self.networks.by_id(known.network_id) is not None:
            self.networks.remove(known.network_id)
        self.table.delete(docker_id)

    def network(self, docker_id: str) -> Network:
        known = self.table.get(docker_id)
        net = self.networks.by_id(known.network_id) if known is not None else None
        if net is None:
            raise NotFound(
                f"Docker network {docker_id[:12]} has no boxnet network",
                hint="it was created while boxnetd's plugin was not serving: recreate it",
            )
        return net

    # -- endpoints -------------------------------------------------------------------------------
    def _owner(self, docker_net: str, endpoint_id: str) -> str:
        return owner_id(KIND, self.network(docker_net).id, endpoint_id, peer_name(endpoint_id))

    def create_endpoint(
        self,
        docker_net: str,
        endpoint_id: str,
        address: IPv4Interface | None,
        mac: str,
        address6: IPv6Interface | None = None,
    ) -> ExternalResult:
        net = self.network(docker_net)
        if address is not None:  # leased by our IPAM driver (if it was): the endpoint's now
            owner = owner_id(KIND, net.id, endpoint_id, peer_name(endpoint_id))
            self.ipam.hand_to_endpoint(net, address.ip, owner)
        request = ExternalRequest(
            kind=KIND,
            container_id=endpoint_id,
            ifname=peer_name(endpoint_id),
            netns="",  # handed over: dockerd moves it into the sandbox
            network=net.id,
            ipv4=address.ip if address is not None else None,
            ipv6=address6.ip if address6 is not None else None,
            dns=False,  # dockerd runs its own resolver in its containers
            mac=mac,
        )
        return self.external.attach(request)

    def delete_endpoint(self, docker_net: str, endpoint_id: str) -> bool:
        known = self.table.get(docker_net)
        if known is None:
            return False  # the network is gone, so is everything on it
        owner = owner_id(KIND, known.network_id, endpoint_id, peer_name(endpoint_id))
        return self.external.detach_owner(owner)

    def endpoint(self, docker_net: str, endpoint_id: str) -> ExternalResult:
        record = self.external.table.get(self._owner(docker_net, endpoint_id))
        if record is None:
            raise NotFound(
                f"endpoint {endpoint_id[:12]} is not on Docker network {docker_net[:12]}"
            )
        return self.external.result(record)

    # -- ports -----------------------------------------------------------------------------------
    def program_ports(self, docker_net: str, endpoint_id: str, ports: list[PortRequest]) -> None:
        """Publish Docker's port map as boxnet DNATs (replacing what was published before)."""
        result = self.endpoint(docker_net, endpoint_id)
        owner = result.record.owner
        self.sandboxes.unpublish_owner(owner)
        if not ports:
            return
        with Undo(f"publish ports of Docker endpoint {endpoint_id[:12]}") as undo:
            self.sandboxes.publish_requests(owner, ports, result.endpoint, undo)
            undo.commit()

    def revoke_ports(self, docker_net: str, endpoint_id: str) -> None:
        known = self.table.get(docker_net)
        if known is None:
            return
        self.sandboxes.unpublish_owner(
            owner_id(KIND, known.network_id, endpoint_id, peer_name(endpoint_id))
        )
