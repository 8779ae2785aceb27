"""Cluster-wide allocation of overlay VNIs, subnets and addresses with etcd transactions.

Two hosts creating networks at the same moment must never get the same VNI, overlapping subnets
or the same address. Each claim is one atomic write:

- a VNI or an address is its own key, claimed with create (put only if absent); losing the race
  means trying the next free one;
- subnets can collide without being equal (10.0.0.0/16 and 10.0.1.0/24), so every claimed subnet
  lives in one key (/boxnet/subnets, a JSON map subnet -> owner), rewritten with compare-and-put on
  the revision it was read at: a concurrent writer makes the write fail, and the claim is replanned
  from the fresh map.

Every loop is bounded: a store too busy to settle raises Unavailable rather than spinning.

An address claim's value is its holder (`<advertise>/<owner>`), optionally stamped with when it
was made (`<holder>@<unix seconds>`): Docker's IPAM claims before the endpoint exists, and the
stamp lets the host that made such a claim release it when no endpoint took it (expired_claims).
Only that host reads its own stamps, so the hosts' clocks need not agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from boxnet.cluster.store import KEY_ROOT, ClusterStore, KeyValue
from boxnet.errors import Conflict, InvalidArgument, Unavailable

SUBNETS_KEY = f"{KEY_ROOT}subnets"
VNI_PREFIX = f"{KEY_ROOT}vni/"
IP_PREFIX = f"{KEY_ROOT}ips/"
FIRST_VNI = 4096  # Docker's overlay starts at 4096 too (lower ones stay free for hand-made VXLANs)
LAST_VNI = (1 << 24) - 1
MAX_ROUNDS = 32  # lost races before giving up


def _busy(what: str) -> Unavailable:
    return Unavailable(
        f"could not {what}: the cluster store changed under every one of {MAX_ROUNDS} attempts",
        "try again; many hosts are creating networks at once",
    )


@dataclass(frozen=True)
class Claim:
    """An address claim as read from the store: who holds it, since when (None: not stamped)."""

    kv: KeyValue
    network_id: str
    ip: IPv4Address
    holder: str
    made: float | None


def stamped(holder: str, made: float) -> str:
    """The value of a claim that carries when it was made."""
    return f"{holder}@{made:.0f}"


def parse_claim(kv: KeyValue) -> Claim | None:
    """The claim an /boxnet/ips/<network>/<ip> key holds (None: not such a key)."""
    network_id, _, ip = kv.key.removeprefix(IP_PREFIX).rpartition("/")
    try:
        address = IPv4Address(ip)
    except ValueError:
        return None
    value = kv.value.decode(errors="replace")
    holder, at, when = value.rpartition("@")
    made: float | None = None
    if at and when.isdigit():
        made = float(when)
    else:
        holder = value
    return Claim(kv, network_id, address, holder, made)


def _holder(value: bytes) -> str:
    holder, at, when = value.decode(errors="replace").rpartition("@")
    return holder if at and when.isdigit() else value.decode(errors="replace")


def claim_vni(store: ClusterStore, owner: str, first: int = FIRST_VNI, last: int = LAST_VNI) -> int:
    """The lowest VNI in first..last that no network holds, claimed for owner."""
    for _ in range(MAX_ROUNDS):
        held, _revision = store.get_prefix(VNI_PREFIX)
        taken = {int(kv.key.removeprefix(VNI_PREFIX)) for kv in held}
        vni = next((v for v in range(first, last + 1) if v not in taken), None)
        if vni is None:
            raise Conflict(
                f"no free VNI between {first} and {last}", "remove unused overlay networks"
            )
        if store.create(f"{VNI_PREFIX}{vni}", owner.encode()):
            return vni
    raise _busy("allocate a VNI")


def release_vni(store: ClusterStore, vni: int) -> None:
    store.delete(f"{VNI_PREFIX}{vni}")


def _read_subnets(store: ClusterStore) -> tuple[dict[str, str], int]:
    """The claimed subnets (cidr -> owner) and the revision to compare against (0: no key yet)."""
    kv = store.get(SUBNETS_KEY)
    if kv is None:
        return {}, 0
    claimed = json.loads(kv.value)
    if not isinstance(claimed, dict):
        raise Unavailable(f"{SUBNETS_KEY} in the cluster store is not a JSON object")
    return {str(k): str(v) for k, v in claimed.items()}, kv.mod_revision


def pick_subnet(
    claimed: dict[str, str],
    pools: Sequence[tuple[IPv4Network, int]],
    requested: IPv4Network | None,
    avoid: Sequence[IPv4Network] = (),
) -> IPv4Network:
    """The subnet to claim: requested if it overlaps nothing claimed, else the first free one of
    the pools' size that also overlaps nothing in avoid (this host's own address space). Pure:
    the caller makes it atomic."""
    taken = [(IPv4Network(cidr), owner) for cidr, owner in claimed.items()]
    if requested is not None:
        for net, owner in taken:
            if net.overlaps(requested):
                raise Conflict(
                    f"subnet {requested} overlaps {net} of overlay network {owner}",
                    "choose another --subnet, or leave it out to get a free one",
                )
        return requested
    for base, size in pools:
        for candidate in base.subnets(new_prefix=size) if size >= base.prefixlen else ():
            if not any(candidate.overlaps(net) for net, _ in taken) and not any(
                candidate.overlaps(net) for net in avoid
            ):
                return candidate
    raise Conflict(
        "the address pools have no free subnet left for an overlay network",
        "remove unused overlay networks, or give --subnet",
    )


def claim_subnet(
    store: ClusterStore,
    owner: str,
    pools: Sequence[tuple[IPv4Network, int]],
    requested: IPv4Network | None = None,
    avoid: Sequence[IPv4Network] = (),
) -> IPv4Network:
    """Claim a subnet for owner cluster-wide (see pick_subnet), atomically."""
    for _ in range(MAX_ROUNDS):
        claimed, revision = _read_subnets(store)
        subnet = pick_subnet(claimed, pools, requested, avoid)
        claimed[str(subnet)] = owner
        if store.compare_and_put(SUBNETS_KEY, revision, json.dumps(claimed).encode()):
            return subnet
    raise _busy("allocate a subnet")


def release_subnet(store: ClusterStore, subnet: IPv4Network) -> None:
    for _ in range(MAX_ROUNDS):
        claimed, revision = _read_subnets(store)
        if claimed.pop(str(subnet), None) is None:
            return
        if store.compare_and_put(SUBNETS_KEY, revision, json.dumps(claimed).encode()):
            return
    raise _busy(f"release subnet {subnet}")


def claim_address(
    store: ClusterStore,
    network_id: str,
    subnet: IPv4Network,
    owner: str,
    requested: IPv4Address | None = None,
    lease: int = 0,
) -> IPv4Address:
    """An address of subnet for owner (an endpoint; or a stamped value, see stamped), unique
    cluster-wide. The first host address is the network's gateway (each host's bridge carries
    it), so it is never handed out."""
    prefix = f"{IP_PREFIX}{network_id}/"
    gateway = next(subnet.hosts())
    if requested is not None:
        if requested not in subnet or requested in (gateway, subnet.broadcast_address):
            raise InvalidArgument(
                f"{requested} is not a usable address of {subnet}",
                f"{gateway} is the gateway; pick another address inside {subnet}",
            )
        if store.create(f"{prefix}{requested}", owner.encode(), lease):
            return requested
        held_by = store.get(f"{prefix}{requested}")
        if held_by is not None and _holder(held_by.value) == _holder(owner.encode()):
            return requested  # claimed for this owner before (handed over: transfer_address)
        raise Conflict(f"address {requested} is already in use on this overlay network")
    for _ in range(MAX_ROUNDS):
        held, _revision = store.get_prefix(prefix)
        taken = {kv.key.removeprefix(prefix) for kv in held}
        address = next((a for a in subnet.hosts() if a != gateway and str(a) not in taken), None)
        if address is None:
            raise Conflict(f"no free address left in {subnet}")
        if store.create(f"{prefix}{address}", owner.encode(), lease):
            return address
    raise _busy(f"allocate an address in {subnet}")


def release_address(store: ClusterStore, network_id: str, address: IPv4Address) -> None:
    store.delete(f"{IP_PREFIX}{network_id}/{address}")


def transfer_address(
    store: ClusterStore, network_id: str, address: IPv4Address, old: str, new: str
) -> bool:
    """Give an address claimed for old to new (Docker's IPAM claims it before the endpoint that
    takes it exists) in one compare-and-put; False if old does not hold it (stamped or not)."""
    kv = store.get(f"{IP_PREFIX}{network_id}/{address}")
    if kv is None or _holder(kv.value) != old:
        return False
    return store.compare_and_put(kv.key, kv.mod_revision, new.encode())


def release_address_of(
    store: ClusterStore, network_id: str, address: IPv4Address, owner: str
) -> None:
    """Release the address if owner still holds it (else it was handed over: leave it), in one
    compare-and-delete on the revision read: a transfer in between wins."""
    kv = store.get(f"{IP_PREFIX}{network_id}/{address}")
    if kv is not None and _holder(kv.value) == owner:
        store.compare_and_delete(kv.key, kv.mod_revision)


def expired_claims(
    store: ClusterStore, holder: str, now: float, grace: float, limit: int
) -> list[Claim]:
    """holder's stamped claims made grace seconds or more before now (unstamped ones of holder
    count as expired: made before claims carried their time), at most limit of them."""
    held, _revision = store.get_prefix(IP_PREFIX)
    expired = []
    for kv in held:
        claim = parse_claim(kv)
        if claim is None or claim.holder != holder:
            continue
        if claim.made is None or now - claim.made >= grace:
            expired.append(claim)
            if len(expired) >= limit:
                break
    return expired


def release_claim(store: ClusterStore, claim: Claim) -> bool:
    """Delete the claim only if its key is still at the revision it was read at: a claim
    transferred to an endpoint (or released and claimed again) meanwhile is left alone."""
    return store.compare_and_delete(claim.kv.key, claim.kv.mod_revision)
