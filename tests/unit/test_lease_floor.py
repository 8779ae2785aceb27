"""The lease floor (Records' hint of where the lowest free address may be) never changes which
address a start gets: after any churn of leases, static leases, releases and retiring
addresses (a removed container's, whose interface is still being deleted), Leases.lease picks
exactly the lowest free address a full scan of a fresh Records finds, skipping addresses that
retire for somebody else; and an address retiring for its owner, or asked for by --ip, is
handed out only after its old interface is gone (core/leasing.py)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from boxnet.core.leasing import Leases
from boxnet.ipam.allocator import pick_address, reserved_addresses
from boxnet.model import IPAMConfig, Network
from boxnet.store.db import Store
from boxnet.store.records import Records
from boxnet.txn import Undo

SUBNET = IPv4Network("10.7.0.0/26")
CFG = IPAMConfig(SUBNET, IPv4Address("10.7.0.1"), aux_addresses={"x": "10.7.0.5"})
NET = Network(id="n1", name="n1", driver="bridge", created="", ipam=(CFG,))


def _leased_by(store: Store, owner: str) -> list[IPv4Address]:
    rows = store.query("SELECT ip FROM leases WHERE container_id = ?", (owner,))
    return [IPv4Address(r["ip"]) for r in rows]


def test_the_floor_never_changes_the_pick(tmp_path: Path) -> None:
    store = Store(tmp_path / "boxnet.db")
    records = Records(store)
    settled: list[str] = []
    leases = Leases(records, settle=settled.append)
    retiring: list[str] = []  # links whose deletion is pending
    rng = random.Random(5)
    holders: list[str] = []
    picks_beside_retiring = 0
    for step in range(400):  # bounded random churn
        if rng.random() < 0.6 and len(holders) < 50:
            owner = f"{step:064x}"
            fresh = Records(store)
            taken = fresh.leased_ips("n1") | reserved_addresses(SUBNET, CFG.gateway, ["10.7.0.5"])
            skipped = leases.retiring.of_others("n1", owner)
            picks_beside_retiring += bool(skipped)
            taken |= skipped
            expected = pick_address(SUBNET, None, taken)
            with Undo("lease") as undo:
                got = leases.lease(owner, NET, CFG, None, undo)
                undo.commit()
            assert got == expected, f"step {step}"
            holders.append(owner)
        elif rng.random() < 0.3 and retiring:  # a deferred deletion is done
            leases.retiring.release(retiring.pop(rng.randrange(len(retiring))))
        elif rng.random() < 0.3 and holders:  # a removal: released, its address retiring
            owner = holders.pop(rng.randrange(len(holders)))
            link = f"veth{step}"
            leases.retiring.hold("n1", _leased_by(store, owner), owner, link)
            retiring.append(link)
            records.release_leases(owner)
        elif rng.random() < 0.2:  # a static --ip somewhere above
            ip = IPv4Address(int(SUBNET.network_address) + rng.randint(10, 60))
            owner = f"s{step:063x}"
            if records.lease("n1", ip, owner, static=True):
                holders.append(owner)
        elif holders:
            records.release_leases(holders.pop(rng.randrange(len(holders))))
    assert picks_beside_retiring > 20  # the churn did pick beside retiring addresses
    store.close()


def test_a_retiring_address_waits_for_its_link_or_goes_to_nobody_else(tmp_path: Path) -> None:
    store = Store(tmp_path / "boxnet.db")
    records = Records(store)
    settled: list[str] = []
    leases = Leases(records, settle=settled.append)
    with Undo("lease") as undo:
        first = leases.lease("a" * 64, NET, CFG, None, undo)
        undo.commit()
    assert first == IPv4Address("10.7.0.2") and settled == []
    records.release_leases("a" * 64)
    leases.retiring.hold("n1", [first], "a" * 64, "vethold")
    with Undo("lease") as undo:  # somebody else: the next one, at once
        assert leases.lease("b" * 64, NET, CFG, None, undo) == IPv4Address("10.7.0.3")
        # its owner again (a restart): its own address, once the old link is gone
        assert leases.lease("a" * 64, NET, CFG, None, undo) == first
        undo.commit()
    assert settled == ["vethold"]
    records.release_leases("a" * 64)
    with Undo("lease") as undo:  # asked for by --ip: waits for the link too
        assert leases.lease("c" * 64, NET, CFG, first, undo) == first
        undo.commit()
    assert settled == ["vethold", "vethold"]
    leases.retiring.release("vethold")
    assert leases.retiring.of_others("n1", "d" * 64) == frozenset()
    store.close()


def test_pick_address_starts_at_the_floor_and_ignores_one_outside_the_range() -> None:
    taken = {IPv4Address("10.7.0.9")}
    assert pick_address(SUBNET, None, taken, start_at=int(IPv4Address("10.7.0.9"))) == (
        IPv4Address("10.7.0.10")
    )
    assert pick_address(SUBNET, None, taken, start_at=10**12) == IPv4Address("10.7.0.1")
