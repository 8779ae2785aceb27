"""Docker's remote IPAM protocol, boxnet's side (`docker network create -d boxnet --ipam-driver
boxnet`): boxnet's allocator hands out the pool and the addresses of Docker's containers, so they
share one address space with boxnet's own containers on an adopted network (no `--ip-range`
split) and a pool never overlaps a boxnet network or a host route.

dockerd asks for an address before it creates the endpoint (RequestAddress, then
CreateEndpoint with that address): the address is leased at once under a provisional owner per
(network, address), and CreateEndpoint hands it to the endpoint (core/dockerplugin.py). A
provisional lease whose endpoint never comes is released by ReleaseAddress, or by gc (it has no
attachment). Pools picked for networks not created yet are held in memory until then.

On an overlay network the addresses are cluster-wide (drivers/overlay.py): RequestAddress
claims in etcd under this host's provisional owner, CreateEndpoint transfers the claim to the
endpoint (one compare-and-put), so two hosts' dockerds never hand out the same address.

A claim no endpoint takes (dockerd died or gave up between RequestAddress and CreateEndpoint,
and never sent ReleaseAddress) expires after GRACE_SECONDS: expire() releases it, run by gc and
by the daemon's housekeeping loop every SWEEP_SECONDS (and once at start). Overlay claims carry
their time in etcd (they outlive this daemon); local ones are timed in memory, and a provisional
lease an earlier daemon left has no time here: it counts as expired.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import TYPE_CHECKING

from boxnet.drivers.overlay import OverlayDriver
from boxnet.errors import BoxnetError, Conflict, InvalidArgument
from boxnet.ipam.allocator import (
    Occupant,
    check_static_address,
    first_host,
    pick_address,
    pick_subnet,
    reserved_addresses,
)
from boxnet.model import Network

if TYPE_CHECKING:
    from boxnet.core.networks import Networks
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.dockeripam")

ADDRESS_SPACE = "boxnet"
PROVISIONAL = "docker-ipam"  # the owner of overlay claims not handed to an endpoint yet
# dockerd calls CreateEndpoint right after RequestAddress (milliseconds); its plugin client gives
# up a call after 30 s. Two minutes is four such timeouts: a claim that old has no endpoint coming.
GRACE_SECONDS = 120.0
SWEEP_SECONDS = 30.0  # how often the housekeeping loop looks: a leak lasts grace + sweep at most
SWEEP_LIMIT = 64  # claims released per sweep: bounded work under the daemon's lock
# For tests only (a lab cannot wait two minutes): shorter grace and sweep periods, in seconds.
GRACE_ENV = "BOXNET_TEST_DOCKER_IPAM_GRACE"
SWEEP_ENV = "BOXNET_TEST_DOCKER_IPAM_SWEEP"


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def provisional_owner(network_id: str, ip: IPv4Address) -> str:
    """The lease owner of an address Docker asked for, until its endpoint takes it."""
    return hashlib.sha256(f"docker-ipam\0{network_id}\0{ip}".encode()).hexdigest()


class DockerIpam:
    def __init__(
        self,
        networks: Networks,
        records: Records,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.networks = networks
        self.records = records
        self.pending: dict[str, IPv4Network] = {}  # pools handed out, their networks not made yet
        self.wall, self.monotonic = wall, monotonic
        self.grace = _seconds(GRACE_ENV, GRACE_SECONDS)
        self.sweep_seconds = _seconds(SWEEP_ENV, SWEEP_SECONDS)
        self.made: dict[str, float] = {}  # local provisional owner -> when (monotonic) leased

    def _network(self, pool: IPv4Network) -> Network | None:
        for net in self.networks.all():
            cfg = net.family(4)
            if cfg is not None and cfg.subnet == pool:
                return net
        return None

    def request_pool(self, pool: IPv4Network | None, sub_pool: str, v6: bool) -> IPv4Interface:
        """A pool (the one asked for, or a free one of boxnet's default pools) and its gateway.
        Never an existing network's unasked: dockerd re-asks while the answer overlaps a route
        of the host (for local-scope networks without --subnet), forever."""
        if v6:
            raise InvalidArgument(
                "the boxnet IPAM driver serves IPv4 only", hint="leave out --ipv6"
            )
        if sub_pool:
            raise InvalidArgument(
                "--ip-range with --ipam-driver boxnet: boxnet allocates from the whole subnet",
                hint="leave out --ip-range (or --ipam-driver boxnet)",
            )
        if pool is None:
            occupied = self.networks.occupied()
            occupied += [Occupant(p, "a pool handed to Docker") for p in self.pending.values()]
            picked, _skipped = pick_subnet(self.networks.pools(), occupied)
            assert isinstance(picked, IPv4Network)  # the default pools are IPv4
            pool = picked
        existing = self._network(pool)
        cfg = existing.family(4) if existing is not None else None
        gateway = cfg.gateway if cfg is not None and cfg.gateway else first_host(pool)
        self.pending[str(pool)] = pool
        return IPv4Interface(f"{gateway}/{pool.prefixlen}")

    def handed_out(self, pool: IPv4Network) -> bool:
        """Did RequestPool give this pool (this IPAM serves the network being created)?"""
        return str(pool) in self.pending

    def release_pool(self, pool_id: str) -> None:
        self.pending.pop(pool_id, None)

    def created(self, pool: IPv4Network) -> None:
        """Its network exists now: the records hold the pool from here on."""
        self.pending.pop(str(pool), None)

    def request_address(
        self, pool_id: str, wanted: IPv4Address | None, gateway: bool
    ) -> IPv4Interface:
        pool = IPv4Network(pool_id)
        if gateway:  # asked while the network is being made (docker network create --gateway)
            return IPv4Interface(f"{wanted or first_host(pool)}/{pool.prefixlen}")
        net = self._network(pool)
        cfg = net.family(4) if net is not None else None
        if net is None or cfg is None:
            raise InvalidArgument(
                f"the boxnet IPAM driver has no network with subnet {pool}",
                hint="use --ipam-driver boxnet with -d boxnet networks only",
            )
        driver = self.networks.driver_of(net)
        if isinstance(driver, OverlayDriver):
            claimed = driver.reserve_address(net, PROVISIONAL, wanted, self.wall())
            return IPv4Interface(f"{claimed}/{pool.prefixlen}")
        if wanted is not None:
            check_static_address(wanted, cfg.subnet, cfg.gateway, cfg.aux_addresses.values())
            owner = provisional_owner(net.id, wanted)
            if not self.records.lease(net.id, wanted, owner, True):
                raise Conflict(f"Address already in use: {wanted} is taken on network {net.name}")
            self.made[owner] = self.monotonic()
            return IPv4Interface(f"{wanted}/{pool.prefixlen}")
        taken = self.records.leased_ips(net.id) | reserved_addresses(
            cfg.subnet, cfg.gateway, cfg.aux_addresses.values()
        )
        while True:
            ip = pick_address(cfg.subnet, cfg.ip_range, taken)
            assert isinstance(ip, IPv4Address)
            owner = provisional_owner(net.id, ip)
            if self.records.lease(net.id, ip, owner, True):
                self.made[owner] = self.monotonic()
                return IPv4Interface(f"{ip}/{pool.prefixlen}")
            taken.add(ip)  # lost a race: the next one

    def release_address(self, pool_id: str, ip: IPv4Address) -> None:
        net = self._network(IPv4Network(pool_id))
        if net is None:
            return
        driver = self.networks.driver_of(net)
        if isinstance(driver, OverlayDriver):
            driver.release_reserved(net, ip, PROVISIONAL)
        else:
            owner = provisional_owner(net.id, ip)
            self.records.release_leases(owner, net.id)
            self.made.pop(owner, None)

    def hand_to_endpoint(self, net: Network, ip: IPv4Address, owner: str) -> None:
        """CreateEndpoint with an address this IPAM leased: the endpoint (owner) leases it
        itself; an overlay claim becomes owner's (its claim_address then finds it its own)."""
        driver = self.networks.driver_of(net)
        if isinstance(driver, OverlayDriver):
            driver.transfer_address(net, ip, PROVISIONAL, owner)
            return
        provisional = provisional_owner(net.id, ip)
        self.records.release_leases(provisional, net.id)
        self.made.pop(provisional, None)

    # -- expiry of claims no endpoint took --------------------------------------------------------
    def young(self) -> set[str]:
        """Local provisional owners still within their grace period (gc must leave them)."""
        now = self.monotonic()
        return {owner for owner, made in self.made.items() if now - made < self.grace}

    def expire(self, cluster: bool = True) -> list[str]:
        """Release this host's provisional claims older than the grace period, local and (with
        cluster) on overlays, at most SWEEP_LIMIT of each; what was released. Caller holds the
        lock."""
        return self._expire_local() + (self._expire_cluster() if cluster else [])

    def expire_logged(self, lock: AbstractContextManager[object]) -> None:
        """The housekeeping loop's round: local leases under the daemon's lock; etcd's claims
        without it (an etcd outage must not stall the API; each release compares the claim's
        revision, so a transfer by CreateEndpoint meanwhile wins)."""
        with lock:
            released = self._expire_local()
        try:
            released += self._expire_cluster()
        except BoxnetError as err:  # the store does not answer: next round
            log.warning("Docker IPAM claims in the cluster store not checked: %s", err.message)
        for what in released:
            log.warning("released %s", what)

    def _expire_local(self) -> list[str]:
        now = self.monotonic()
        holders = set(self.records.lease_holders())
        released: list[str] = []
        for net in self.networks.all():
            for ip in sorted(self.records.leased_ips(net.id), key=str):
                if not isinstance(ip, IPv4Address):
                    continue  # this IPAM hands out IPv4 only
                owner = provisional_owner(net.id, ip)
                if owner not in holders:
                    continue
                made = self.made.get(owner)
                if made is not None and now - made < self.grace:
                    continue
                self.records.release_leases(owner, net.id)
                self.made.pop(owner, None)
                age = f"{now - made:.0f} s ago" if made is not None else "before this daemon"
                released.append(
                    f"address {ip} of network {net.name} (Docker's IPAM lease made {age},"
                    " taken by no endpoint)"
                )
                if len(released) >= SWEEP_LIMIT:
                    return released
        self.made = {o: t for o, t in self.made.items() if o in holders}  # released elsewhere
        return released

    def _expire_cluster(self) -> list[str]:
        driver = self.networks.drivers[OverlayDriver.name]
        if not isinstance(driver, OverlayDriver):
            return []
        now = self.wall()
        released = []
        for claim in driver.expire_reserved(PROVISIONAL, now, self.grace, SWEEP_LIMIT):
            net = self.networks.by_id(claim.network_id)
            name = net.name if net is not None else claim.network_id[:12]
            age = f"{now - claim.made:.0f} s ago" if claim.made is not None else "unstamped"
            released.append(
                f"address {claim.ip} of overlay {name} (claimed in etcd by Docker's IPAM {age},"
                " taken by no endpoint)"
            )
        return released
