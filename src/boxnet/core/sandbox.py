"""A container's network sandbox: its namespace, endpoints and published ports, per network mode.

Modes: `host` (the daemon's namespace, nothing to build), `none` (a namespace with lo only),
`container:X` (X's namespace, shared, never deleted by us), a network of any joinable driver (a
namespace, one endpoint per attached network, `eth0`, `eth1`, ...; ports published on the first).
Core addresses each endpoint (IPAM) and the network's driver plugs it in (drivers/).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, replace
from functools import partial
from ipaddress import IPv4Address, ip_address, ip_interface
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet import faults
from boxnet.core import metrics
from boxnet.core.leasing import Leases
from boxnet.core.ports import PortAllocator
from boxnet.errors import Conflict, Forbidden, InvalidArgument
from boxnet.firewall.base import ANY, ANY_IP, DnatIntent
from boxnet.kernel import addressing, links, netns
from boxnet.kernel.iproute import OwnedIPRoute
from boxnet.model import (
    OPT_ENDPOINT_GATEWAY,
    OPT_ENDPOINT_GATEWAY6,
    Container,
    Endpoint,
    EndpointRequest,
    IPAddress,
    IPInterface,
    Network,
    PortBinding,
    PortRequest,
    mac_for_ip,
)
from boxnet.txn import Undo

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.core.networks import Networks
    from boxnet.firewall.base import FirewallBackend
    from boxnet.kernel.netnspool import NetnsPool
    from boxnet.lan.pipework import Pipework
    from boxnet.paths import Paths
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.sandbox")
# What a container on networks gets in its new namespace: netlink for its endpoints, the
# embedded resolver's UDP and TCP sockets (plus a libnftables context, see setup).
NETWORK_SOCKETS = (netns.NETLINK, netns.UDP, netns.TCP)


@dataclass(frozen=True)
class SandboxResult:
    netns_path: str  # "" = the daemon's own namespace (host mode)
    endpoints: tuple[Endpoint, ...]
    bindings: tuple[PortBinding, ...]


def mode_kind(network_mode: str) -> str:
    if network_mode in ("host", "none"):
        return network_mode
    if network_mode.startswith("container:"):
        return "container"
    return "network"


class Sandboxes:
    def __init__(
        self,
        paths: Paths,
        records: Records,
        networks: Networks,
        ipr: IPRoute,
        firewall: FirewallBackend | None,
    ) -> None:
        self.paths = paths
        self.records = records
        self.networks = networks
        self.ipr = ipr
        self.firewall = firewall
        self.ports = PortAllocator()
        # Core's IPAM, which holds back the addresses of interfaces still being deleted.
        self.leases = Leases(
            records, partial(links.await_unlisted, ipr) if isinstance(ipr, OwnedIPRoute) else None
        )
        # boxnet.lan's pipework attachments, re-applied into every new namespace (controller).
        self.pipework: Pipework | None = None
        # Namespaces made ahead for containers on networks (kernel/netnspool.py; controller).
        self.netns_pool: NetnsPool | None = None

    # -- build ----------------------------------------------------------------------------------
    def setup(self, c: Container, joined_netns: str, undo: Undo) -> SandboxResult:
        kind = mode_kind(c.spec.network_mode)
        if kind == "host":
            return SandboxResult("", (), ())
        if kind == "container":
            return SandboxResult(joined_netns, (), ())
        path = self.paths.netns_path(c.id)
        pool = self.netns_pool if kind == "network" else None
        if pool is None or not pool.take(path):  # one made ahead, else now
            # Sockets the start wants inside: netlink (attach), the resolver's UDP/TCP...
            wanted = list(NETWORK_SOCKETS) if kind == "network" else [netns.NETLINK]
            # ...and the libnftables context that redirects 127.0.0.11:53 to those (dns.redirect).
            netns.create_netns(path, prepare=wanted, nftables=kind == "network")
        undo.push("delete netns", lambda: netns.delete_netns(path))
        faults.point("container.start.netns")
        if kind == "none":  # lo only (up since create_netns)
            if self.pipework is not None:
                self.pipework.on_setup(c, str(path), undo)
            return SandboxResult(str(path), (), ())
        endpoints = []
        began = time.perf_counter()
        for index, req in enumerate(self.endpoint_requests(c)):
            net = self.networks.find(req.network)
            endpoints.append(self._attach(c, net, req, f"eth{index}", index == 0, path, undo))
        # Parsed by bench/networks.py (boxnetd -D): the in-daemon cost of attaching.
        log.debug("attach %s: %d endpoint(s) in %.2f ms", c.short_id, len(endpoints),
                  (time.perf_counter() - began) * 1000)  # fmt: skip
        metrics.record("attach", time.perf_counter() - began)
        bindings = self._publish(c, endpoints[0], undo) if endpoints else ()
        if self.pipework is not None:
            self.pipework.on_setup(c, str(path), undo)
        return SandboxResult(str(path), tuple(endpoints), bindings)

    @staticmethod
    def endpoint_requests(c: Container) -> list[EndpointRequest]:
        """The network of --network first, then any other requested ones."""
        reqs = list(c.spec.endpoints)
        primary = [r for r in reqs if r.network == c.spec.network_mode]
        rest = [r for r in reqs if r.network != c.spec.network_mode]
        if not primary and not c.spec.primary_detached:
            primary = [EndpointRequest(network=c.spec.network_mode)]
        return primary + rest

    def _attach(
        self,
        c: Container,
        net: Network,
        req: EndpointRequest,
        ifname: str,
        primary: bool,
        path: Path,
        undo: Undo,
    ) -> Endpoint:
        mac = c.spec.mac_address if (primary and c.spec.mac_address) else None
        names = (c.name, c.short_id)
        return self.attach_endpoint(c.id, net, req, ifname, primary, path, mac, undo, names)

    def attach_endpoint(
        self,
        owner_id: str,
        net: Network,
        req: EndpointRequest,
        ifname: str,
        primary: bool,
        path: Path,
        mac: str | None,
        undo: Undo,
        names: tuple[str, ...] = (),
        hand_over: bool = False,
    ) -> Endpoint:
        """Address an endpoint (IPAM is core's) and let the network's driver plug it in.
        owner_id is a container's id, or an external attachment's (core/external.py); names are
        its DNS names beside the request's aliases (for drivers that publish them). hand_over:
        the interface stays in the daemon's namespace for a runtime to move (path unused)."""
        driver = self.networks.driver_of(net)
        if not driver.joinable or not net.ipam:
            raise InvalidArgument(f"cannot attach a container to network {net.name}")
        addresses: list[IPInterface] = []
        gateways: list[IPAddress] = []
        if req.ipv6 is not None and net.family(6) is None:
            raise InvalidArgument(
                f"cannot use --ip6 {req.ipv6}: network {net.name} has no IPv6",
                hint="create the network with --ipv6, or leave out --ip6",
            )
        for cfg in net.ipam:  # one address (and next hop) per address family
            wanted: IPAddress | None = req.ipv4 if cfg.version == 4 else req.ipv6
            # A driver that allocates cluster-wide claims it; core's IPAM otherwise.
            ip = driver.claim_address(net, cfg, owner_id, wanted, undo)
            if ip is None:
                ip = self.leases.lease(owner_id, net, cfg, wanted, undo)
            addresses.append(ip_interface(f"{ip}/{cfg.subnet.prefixlen}"))
            gateway = cfg.gateway
            # `default-gateway` / `default-gateway-v6` of the default bridge
            option = OPT_ENDPOINT_GATEWAY if cfg.version == 4 else OPT_ENDPOINT_GATEWAY6
            if net.options.get(option):
                gateway = ip_address(net.options[option])
            if gateway is not None and not net.internal:
                gateways.append(gateway)
        first = addresses[0].ip
        endpoint = Endpoint(
            id=secrets.token_hex(32),
            container_id=owner_id,
            network_id=net.id,
            ifname=ifname,
            addresses=tuple(addresses),
            gateways=tuple(gateways),
            mac=req.mac or mac or mac_for_ip(first),  # EndpointConfig, then --mac-address
            host_veth="",
            aliases=req.aliases,
        )
        if hand_over:
            endpoint = driver.hand_over(net, endpoint, undo)
        else:
            endpoint = driver.join(net, endpoint, primary, path, undo)
        if (
            req.link_local and path and not hand_over
        ):  # Docker's LinkLocalIPs: more addresses, same interface
            addressing.add_addresses_in(path, ifname, req.link_local)
        self.records.put_endpoint(endpoint)
        undo.push("forget endpoint", lambda: self.records.delete_endpoint(endpoint.id))
        driver.attached(net, endpoint, (*names, *endpoint.aliases))
        undo.push("detached", lambda: driver.detached(net, endpoint))
        return endpoint

    def _detached(self, endpoint: Endpoint) -> None:
        """Tell the endpoint's driver it is gone (cluster-wide records, claims)."""
        net = self.networks.by_id(endpoint.network_id)
        if net is not None:
            self.networks.driver_of(net).detached(net, endpoint)

    def _publish(self, c: Container, endpoint: Endpoint, undo: Undo) -> tuple[PortBinding, ...]:
        requests = list(c.spec.ports)
        if c.spec.publish_all:
            explicit = {(r.container_port, r.proto) for r in requests}
            requests += [
                PortRequest(port, proto, None, None, None)
                for port, proto in c.spec.exposed
                if (port, proto) not in explicit
            ]
        return self.publish_requests(c.id, requests, endpoint, undo)

    def publish_requests(
        self, owner_id: str, requests: list[PortRequest], endpoint: Endpoint, undo: Undo
    ) -> tuple[PortBinding, ...]:
        """Reserve host ports for requests and DNAT them to endpoint (owner_id's)."""
        if not requests:
            return ()
        began = time.perf_counter()
        net = self.networks.by_id(endpoint.network_id)
        if net is not None and net.internal:
            raise InvalidArgument(
                f"cannot publish ports on internal network {net.name}",
                hint="internal networks have no route to or from the outside",
            )
        used = {
            proto: self.records.host_ports_index(proto) for proto in {r.proto for r in requests}
        }
        default_ip = net.host_binding if net is not None else IPv4Address("0.0.0.0")
        # The host's addresses only matter for bindings to one address; dumping them costs
        # ~0.6 ms, so the common all-addresses case skips it.
        specific = default_ip != ANY_IP or any(
            r.host_ip is not None and r.host_ip not in ANY for r in requests
        )
        local: set[IPAddress] = set()
        if specific:
            local.update(iface.ip for _n, iface in addressing.all_ipv4_addresses(self.ipr))
            if any(r.host_ip is not None and r.host_ip.version == 6 for r in requests):
                local.update(addressing.local_ipv6_addresses(self.ipr))
        six = endpoint.interface6
        four = endpoint.interface4
        bindings = self.ports.allocate(
            requests, used, default_ip, local, ipv6=six is not None, ipv4=four is not None
        )

        def target(b: PortBinding) -> IPAddress:
            found = six if b.host_ip.version == 6 else four
            assert found is not None  # allocate() refused bindings of a family it lacks
            return found.ip

        try:
            self.records.add_ports(owner_id, [(b, str(target(b))) for b in bindings])
        except Exception as exc:  # the UNIQUE constraint: somebody took it meanwhile
            raise Conflict(f"port is already allocated: {exc}") from exc
        undo.push("release ports", lambda: self.records.release_ports(owner_id))
        dnats = [
            DnatIntent(b.host_ip, b.proto, b.host_port, target(b), b.container_port)
            for b in bindings
        ]
        if self.firewall is not None:
            self.firewall.add_dnats(dnats)
            undo.push("unpublish", lambda: self._unpublish(dnats))
        if net is not None:
            self.networks.driver_of(net).published(net, endpoint)
        # GET /boxnet/metrics "publish": allocation + records + one nft batch (bench/ports.py).
        metrics.record("publish", time.perf_counter() - began)
        faults.point("container.start.ports")
        return tuple(bindings)

    def unpublish_owner(self, owner_id: str) -> None:
        """Remove the DNATs and reservations of owner_id's published ports. Idempotent."""
        dnats = [
            DnatIntent(b.host_ip, b.proto, b.host_port, ip_address(ip), b.container_port)
            for _cid, b, ip in self.records.ports(owner_id)
        ]
        try:
            self._unpublish(dnats)
        finally:
            self.records.release_ports(owner_id)

    def _unpublish(self, dnats: list[DnatIntent]) -> None:
        if self.firewall is not None:
            self.firewall.remove_dnats(dnats)

    # -- tear down ------------------------------------------------------------------------------
    def teardown(self, c: Container) -> None:
        """Undo everything setup() made for a stopped container. Idempotent, best effort."""
        problems: list[str] = []
        dnats = [
            DnatIntent(b.host_ip, b.proto, b.host_port, ip_address(ip), b.container_port)
            for _cid, b, ip in self.records.ports(c.id)
        ]
        try:
            self._unpublish(dnats)
        except Exception as exc:
            problems.append(f"unpublish: {exc}")
        self.records.release_ports(c.id)
        for endpoint in self.records.endpoints(container_id=c.id):
            if endpoint.host_veth:
                # Deleted after the answer; until then its addresses, released below, are
                # retiring: whoever gets one next waits for the deletion (core/leasing.py).
                retiring = self.leases.retiring
                addresses = [a.ip for a in endpoint.addresses]
                retiring.hold(endpoint.network_id, addresses, endpoint.host_veth)
                try:
                    links.retire_link(self.ipr, endpoint.host_veth, then=retiring.release)
                except Exception as exc:
                    retiring.release(endpoint.host_veth)
                    problems.append(f"veth {endpoint.host_veth}: {exc}")
            self.records.delete_endpoint(endpoint.id)
            try:
                self._detached(endpoint)
            except Exception as exc:
                problems.append(f"detach {endpoint.id[:12]}: {exc}")
        self.records.release_leases(c.id, keep_static=True)
        if mode_kind(c.spec.network_mode) in ("none", "network"):
            path = self.paths.netns_path(c.id)
            try:
                # The veths die with the namespace: the kernel frees them asynchronously, which
                # keeps the ~18 ms a veth deletion costs off this path.
                netns.delete_netns(path)
            except Exception as exc:
                problems.append(f"netns: {exc}")
        if problems:
            log.warning("teardown of %s: %s", c.short_id, "; ".join(problems))

    # -- live connect / disconnect (`boxnet network connect|disconnect`) ------------------------
    def connect(self, c: Container, net: Network, req: EndpointRequest) -> Endpoint | None:
        """Attach c to net: recorded in its spec (kept for every later start) and, when it
        runs, realised now as the next free ethN. Returns the live endpoint, if any."""
        _check_connectable(c, net, self.networks.driver_of(net).joinable)
        if (req.ipv4 is not None or req.ipv6 is not None) and net.predefined:
            raise InvalidArgument(
                "user specified IP address is supported only when connecting to networks with"
                " user configured subnets",
                hint="create a network (boxnet network create --subnet ...) and connect to it",
            )
        if any(self._same_network(r.network, net) for r in self.endpoint_requests(c)):
            raise Conflict(
                f"endpoint with name {c.name} already exists in network {net.name}",
                hint=f"disconnect it first: boxnet network disconnect {net.name} {c.name}",
            )
        endpoint = None
        with Undo(f"connect {c.short_id} to {net.name}") as undo:
            self.records.intents.begin("network.connect", c.id, {"network": net.id}, undo)
            if c.state == "running" and mode_kind(c.spec.network_mode) == "network":
                used = {e.ifname for e in self.records.endpoints(container_id=c.id)}
                ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
                path = Path(c.netns_path or self.paths.netns_path(c.id))
                endpoint = self._attach(c, net, req, ifname, False, path, undo)
                faults.point("network.connect.attached")
            request = replace(req, network=net.name)
            spec = replace(c.spec, endpoints=(*c.spec.endpoints, request))
            self.records.update_container(c, spec=spec)
            undo.commit()
        return endpoint

    def disconnect(self, c: Container, net: Network, force: bool = False) -> None:
        """Detach c from net: its ethN goes away now (the network's driver unplugs it), its
        address is released, and the spec no longer asks for the network."""
        driver = self.networks.driver_of(net)
        if not driver.joinable:
            raise Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        # The network of --network too (Docker allows it): it is no longer asked for after.
        primary = self._same_network(c.spec.network_mode, net) and not c.spec.primary_detached
        live = [e for e in self.records.endpoints(container_id=c.id) if e.network_id == net.id]
        wanted = [r for r in c.spec.endpoints if self._same_network(r.network, net)]
        if not live and not wanted and not primary:
            raise Conflict(
                f"container {c.name} is not connected to network {net.name}",
                hint="boxnet inspect CONTAINER shows its networks",
            )
        intent = self.records.intents.begin("network.disconnect", c.id, {"network": net.id})
        for endpoint in live:
            try:
                driver.leave(net, endpoint, c.netns_path)
            except Exception:
                if not force:
                    raise
            faults.point("network.disconnect.unplugged")
            self.records.delete_endpoint(endpoint.id)
            driver.detached(net, endpoint)
        self.records.release_leases(c.id, net.id)
        rest = tuple(r for r in c.spec.endpoints if not self._same_network(r.network, net))
        detached = c.spec.primary_detached or self._same_network(c.spec.network_mode, net)
        spec = replace(c.spec, endpoints=rest, primary_detached=detached)
        self.records.update_container(c, spec=spec)
        self.records.intents.done(intent)

    def forget_endpoints(self, net: Network, container_ref: str) -> int:
        """`disconnect -f` for a container that no longer exists: drop what it left on net."""
        stale = [
            e
            for e in self.records.endpoints(network_id=net.id)
            if e.container_id.startswith(container_ref)
            and self.records.container(e.container_id) is None
        ]
        driver = self.networks.driver_of(net)
        for endpoint in stale:
            driver.leave(net, endpoint, "")
            self.records.delete_endpoint(endpoint.id)
            driver.detached(net, endpoint)
            self.records.release_leases(endpoint.container_id, net.id)
        return len(stale)

    def _same_network(self, ref: str, net: Network) -> bool:
        return ref in (net.name, net.id) or (len(ref) >= 12 and net.id.startswith(ref))


def _check_connectable(c: Container, net: Network, joinable: bool) -> None:
    if not joinable or mode_kind(c.spec.network_mode) == "host":
        raise Forbidden(
            "container cannot be disconnected from host network or connected to host network"
        )
    if mode_kind(c.spec.network_mode) != "network":
        raise Forbidden(
            "container sharing network namespace with another container or host cannot be"
            " connected to any other network",
            hint=f"container {c.name} runs with --network {c.spec.network_mode}",
        )
