"""Joining a namespace someone else owns: the endpoint side of boxnet's plugins (issue 18).

A CNI runtime (and later Docker's remote network driver) makes the container's network
namespace itself and asks boxnet to plug it into one of its networks. The attachment is a
container endpoint in all but owner: core's IPAM addresses it, the network's driver makes the
veth into the namespace, published ports become the same DNAT rules, its names go into the
embedded resolver's table, and the records (endpoint, leases, ports) are the ordinary ones, owned
by the attachment's `owner` id (store/external_records.py says who asked and where the namespace
is). So `network inspect`, isolation and `explain` see it like any container.

Crash safety as elsewhere: an intent row while the change runs; the attachment's own record is
written last (attach) and deleted first (detach), so a crash in between leaves records with no
owner, which reconcile's gc removes with their kernel objects. gc keeps attachments whose
namespace lives and removes those whose namespace is gone (`sweep`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet import faults
from boxnet.clock import now_rfc3339
from boxnet.core import metrics
from boxnet.errors import InvalidArgument, NotFound
from boxnet.kernel import links, netns
from boxnet.model import (
    Endpoint,
    EndpointRequest,
    Network,
    NetworkRequest,
    PortBinding,
    PortRequest,
)
from boxnet.store.external_records import ExternalRecord, ExternalRecords
from boxnet.txn import Undo

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.core.dnshook import NameService
    from boxnet.core.networks import Networks
    from boxnet.core.reconcile import GcReport
    from boxnet.core.sandbox import Sandboxes
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.external")

RESOLVER = "127.0.0.11"


@dataclass(frozen=True)
class ExternalRequest:
    """Plug the namespace at `netns` into `network` as `ifname`; with netns "" the interface
    named `ifname` is left unconfigured in the daemon's namespace for the runtime to move into
    its sandbox (Docker's remote driver), and the runtime owns its lifetime, not a namespace."""

    kind: str  # who asks: "cni", "docker"
    container_id: str
    ifname: str
    netns: str
    network: str
    # A network that does not exist is created with this subnet (None: refused).
    subnet: IPv4Network | None = None
    gateway: IPv4Address | None = None
    name: str = ""  # a DNS name for it (the runtime's container name)
    aliases: tuple[str, ...] = ()
    ports: tuple[PortRequest, ...] = ()
    ipv4: IPv4Address | None = None  # a static address
    ipv6: IPv6Address | None = None  # a static IPv6 address (on a network with IPv6)
    dns: bool = True  # serve 127.0.0.11 inside the namespace
    mac: str = ""  # the interface's MAC ("" = derived from the address)


@dataclass(frozen=True)
class ExternalResult:
    record: ExternalRecord
    network: Network
    endpoint: Endpoint
    bindings: tuple[PortBinding, ...]
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = field(default_factory=tuple)


def owner_id(kind: str, network: str, container_id: str, ifname: str) -> str:
    """The id an attachment's records are kept under: one per (network, container, ifname), as
    CNI keys an attachment, and 64 hex like a container id so every table takes it."""
    return hashlib.sha256(f"{kind}\0{network}\0{container_id}\0{ifname}".encode()).hexdigest()


class ExternalAttachments:
    def __init__(
        self,
        records: Records,
        networks: Networks,
        sandboxes: Sandboxes,
        table: ExternalRecords,
        ipr: IPRoute,
    ) -> None:
        self.records = records
        self.networks = networks
        self.sandboxes = sandboxes
        self.table = table
        self.ipr = ipr
        self.dns: NameService | None = None  # set by the controller

    # -- attach ---------------------------------------------------------------------------------
    def attach(self, req: ExternalRequest) -> ExternalResult:
        """Plug req.netns into the network; a repeated request for the same namespace returns
        the attachment made before. Caller holds the controller's lock."""
        if req.netns and not netns.is_netns(req.netns):
            raise NotFound(
                f"network namespace {req.netns} does not exist",
                hint="the runtime must create the namespace before asking to join it",
            )
        owner = owner_id(req.kind, req.network, req.container_id, req.ifname)
        existing = self.table.get(owner)
        if existing is not None:
            if existing.netns == req.netns:
                return self.result(existing)
            self.detach_owner(owner)  # the same container id in a new namespace: start over
        net = self._network(req)
        with Undo(f"attach {req.kind} {req.container_id[:12]} to {net.name}") as undo:
            payload = {"network": net.id, "netns": req.netns, "ifname": req.ifname}
            self.records.intents.begin("external.attach", owner, payload, undo)
            # GET /boxnet/metrics (bench/cni.py): the endpoint, then the names and resolver.
            with metrics.timed("external.endpoint"):
                # One visit for what the rest needs inside: netlink (the veth), the resolver's
                # sockets, lo up and a libnftables context (its 127.0.0.11 redirect).
                if req.netns:
                    kinds = [netns.NETLINK, netns.UDP, netns.TCP] if req.dns else [netns.NETLINK]
                    netns.prepare(req.netns, kinds, loopback=req.dns, nftables=req.dns)
                    undo.always("drop spare sockets", lambda: netns.drop_spares(req.netns))
                endpoint = self.sandboxes.attach_endpoint(
                    owner,
                    net,
                    EndpointRequest(
                        network=net.name,
                        ipv4=req.ipv4,
                        ipv6=req.ipv6,
                        aliases=req.aliases,
                        mac=req.mac,
                    ),
                    req.ifname,
                    True,
                    Path(req.netns),
                    None,
                    undo,
                    hand_over=not req.netns,
                )
            faults.point("external.attach.joined")
            bindings = self.sandboxes.publish_requests(owner, list(req.ports), endpoint, undo)
            faults.point("external.attach.published")
            record = ExternalRecord(
                owner=owner,
                kind=req.kind,
                container_id=req.container_id,
                ifname=req.ifname,
                netns=req.netns,
                network_id=net.id,
                endpoint_id=endpoint.id,
                name=req.name,
                aliases=req.aliases,
                dns=req.dns and bool(req.netns),
                created=now_rfc3339(),
            )
            with metrics.timed("external.dns"):
                self._serve(record, endpoint)
            if self.dns is not None:
                dns = self.dns
                undo.push("stop serving DNS", lambda: dns.detach(owner))
            self.table.put(record)  # last: with it the attachment is complete
            faults.point("external.attach.recorded")
            undo.commit()
        return ExternalResult(record, net, endpoint, bindings, *self._resolv(record))

    def _network(self, req: ExternalRequest) -> Network:
        try:
            net = self.networks.find(req.network)
        except NotFound:
            if req.subnet is None:  # a configuration error: 400, not "no such container"
                raise InvalidArgument(
                    f"network {req.network} not found",
                    hint="create it (boxnet network create --subnet CIDR NAME), or give the"
                    " subnet in the plugin's configuration (ipam.subnet) to have it created",
                ) from None
            request = NetworkRequest(
                name=req.network,
                subnet=req.subnet,
                gateway=req.gateway,
                labels={"boxnet.created-by": req.kind},
            )
            return self.networks.create(request).network
        cfg = net.family(4)
        if req.subnet is not None and (cfg is None or cfg.subnet != req.subnet):
            have = cfg.subnet if cfg is not None else "no IPv4 subnet"
            raise InvalidArgument(
                f"network {net.name} has {have}, the configuration asks for {req.subnet}",
                hint="make the configuration's subnet the network's, or leave it out",
            )
        return net

    def _names(self, record: ExternalRecord) -> tuple[str, ...]:
        names = [record.name, *record.aliases]
        return tuple(dict.fromkeys(n for n in names if n))

    def _serve(self, record: ExternalRecord, endpoint: Endpoint) -> None:
        names = self._names(record)
        if self.dns is not None and (names or record.dns):
            self.dns.serve_external(record.owner, names, endpoint, record.netns, record.dns)

    def _resolv(self, record: ExternalRecord) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if record.dns and self.dns is not None:
            return (RESOLVER,), tuple(self.dns.config.dns_search)
        return (), ()

    def result(self, record: ExternalRecord) -> ExternalResult:
        """The attachment as recorded (a repeated ADD, CHECK)."""
        net = self.networks.by_id(record.network_id)
        endpoint = next(
            (e for e in self.records.endpoints(container_id=record.owner)),
            None,
        )
        if net is None or endpoint is None:
            raise NotFound(f"the attachment of {record.container_id[:12]} lost its endpoint")
        bindings = tuple(b for _cid, b, _ip in self.records.ports(record.owner))
        return ExternalResult(record, net, endpoint, bindings, *self._resolv(record))

    def find(self, kind: str, network: str, container_id: str, ifname: str) -> ExternalRecord:
        record = self.table.get(owner_id(kind, network, container_id, ifname))
        if record is None:
            raise NotFound(
                f"container {container_id} has no {ifname} on network {network}",
                hint="it was never attached, or it was detached",
            )
        return record

    # -- detach ---------------------------------------------------------------------------------
    def detach(self, kind: str, network: str, container_id: str, ifname: str) -> bool:
        """Unplug and forget; nothing there is success (a second DEL). Returns whether there
        was a record."""
        return self.detach_owner(owner_id(kind, network, container_id, ifname))

    def detach_owner(self, owner: str) -> bool:
        record = self.table.get(owner)
        intent = self.records.intents.begin("external.detach", owner, {})
        self.table.delete(owner)  # first: a crash from here on leaves records gc removes
        faults.point("external.detach.forgotten")
        problems: list[str] = []
        if self.dns is not None:
            self.dns.detach(owner)
        try:
            self.sandboxes.unpublish_owner(owner)
        except Exception as exc:
            problems.append(f"unpublish: {exc}")
        path = record.netns if record is not None and netns.is_netns(record.netns) else ""
        began = time.perf_counter()
        for endpoint in self.records.endpoints(container_id=owner):
            net = self.networks.by_id(endpoint.network_id)
            if net is not None:
                try:
                    self.networks.driver_of(net).leave(net, endpoint, path)
                except Exception as exc:
                    problems.append(f"unplug {endpoint.ifname}: {exc}")
            self.records.delete_endpoint(endpoint.id)
            if net is not None:
                self.networks.driver_of(net).detached(net, endpoint)  # cluster records, claims
        metrics.record("external.unplug", time.perf_counter() - began)
        self.records.release_leases(owner)
        self.records.intents.done(intent)
        if problems:  # reported, never fatal: what is left has no owner and gc collects it
            log.warning("detach %s: %s", owner[:12], "; ".join(problems))
        return record is not None

    # -- check, gc --------------------------------------------------------------------------------
    def check(self, record: ExternalRecord) -> list[str]:
        """What differs between the records and the kernel ([] = all there)."""
        if not record.netns:  # handed over: the runtime owns the interface, we the host end
            veth = self.result(record).endpoint.host_veth
            missing = veth and links.link_info(self.ipr, veth) is None
            return [f"its host interface {veth} is missing"] if missing else []
        if not netns.is_netns(record.netns):
            return [f"network namespace {record.netns} is gone"]
        result = self.result(record)
        inside = links.interface_in(record.netns, record.ifname)
        if inside is None:
            return [f"{record.ifname} is missing in {record.netns}"]
        problems = []
        if not inside.up:
            problems.append(f"{record.ifname} is down")
        for address in result.endpoint.addresses:
            if str(address) not in inside.addresses:
                problems.append(f"{record.ifname} lacks its address {address}")
        if inside.mac.lower() != result.endpoint.mac.lower():
            problems.append(f"{record.ifname} has MAC {inside.mac}, not {result.endpoint.mac}")
        veth = result.endpoint.host_veth
        if veth and links.link_info(self.ipr, veth) is None:
            problems.append(f"its host interface {veth} is missing")
        return problems

    def collect(self, kind: str, network: Network, keep: set[tuple[str, str]]) -> list[str]:
        """Detach every attachment of `kind` on network whose (container id, ifname) is not in
        keep (CNI GC's valid attachments). Returns what was removed."""
        removed = []
        for record in self.table.all(network.id):
            if record.kind == kind and (record.container_id, record.ifname) not in keep:
                self.detach_owner(record.owner)
                removed.append(f"{record.container_id}/{record.ifname}")
        return removed

    # -- reconcile ------------------------------------------------------------------------------
    def sweep(self, report: GcReport) -> set[str]:
        """For gc: detach attachments whose namespace is gone; returns the live owners. A
        handed-over interface (netns "") lives until its runtime deletes it (Docker's
        DeleteEndpoint, also for stale endpoints when dockerd starts again)."""
        live = set()
        for record in self.table.all():
            if not record.netns or netns.is_netns(record.netns):
                live.add(record.owner)
                continue
            self.detach_owner(record.owner)
            report.released.append(
                f"{record.kind} attachment {record.container_id[:12]}/{record.ifname}"
                f" (namespace {record.netns} gone)"
            )
        return live

    def adopt(self) -> None:
        """After a daemon restart: names and resolver sockets again (they died with it)."""
        for record in self.table.all():
            if record.netns and not netns.is_netns(record.netns):
                continue  # gc removes it
            try:
                self._serve(record, self.result(record).endpoint)
            except Exception as exc:
                log.warning("external %s: cannot serve DNS again: %s", record.owner[:12], exc)

    def display_names(self) -> dict[str, str]:
        """owner -> the name `network inspect` shows for it."""
        return {r.owner: r.name or f"{r.kind}-{r.container_id[:12]}" for r in self.table.all()}
