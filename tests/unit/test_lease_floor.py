"""The lease floor (Records' hint of where the lowest free address may be) never changes which
address a start gets: after any churn of leases, static leases and releases, Leases.lease picks
exactly the lowest free address a full scan of a fresh Records finds. And an address whose old
interface is still being deleted (retiring, core/leasing.py) is handed out only after that
deletion: the start waits for it."""

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


def test_the_floor_never_changes_the_pick(tmp_path: Path) -> None:
    store = Store(tmp_path / "boxnet.db")
    records = Records(store)
    leases = Leases(records, settle=None)
    rng = random.Random(5)
    holders: list[str] = []
    for step in range(300):  # bounded random churn
        if rng.random() < 0.6 and len(holders) < 55:
            owner = f"{step:064x}"
            fresh = Records(store)
            taken = fresh.leased_ips("n1") | reserved_addresses(SUBNET, CFG.gateway, ["10.7.0.5"])
            expected = pick_address(SUBNET, None, taken)
            with Undo("lease") as undo:
                got = leases.lease(owner, NET, CFG, None, undo)
                undo.commit()
            assert got == expected, f"step {step}"
            holders.append(owner)
        elif rng.random() < 0.2:  # a static --ip somewhere above
            ip = IPv4Address(int(SUBNET.network_address) + rng.randint(10, 60))
            owner = f"s{step:063x}"
            if records.lease("n1", ip, owner, static=True):
                holders.append(owner)
        elif holders:
            records.release_leases(holders.pop(rng.randrange(len(holders))))
    store.close()


def test_a_retiring_address_is_handed_out_once_its_link_is_gone(tmp_path: Path) -> None:
    store = Store(tmp_path / "boxnet.db")
    records = Records(store)
    settled: list[str] = []
    leases = Leases(records, settle=settled.append)
    with Undo("lease") as undo:
        first = leases.lease("a" * 64, NET, CFG, None, undo)
        undo.commit()
    assert first == IPv4Address("10.7.0.2") and settled == []
    records.release_leases("a" * 64)  # a removal: released, its veth still being deleted
    leases.retiring.hold("n1", [first], "vethold")
    with Undo("lease") as undo:  # the lowest free address, as ever, after that deletion
        assert leases.lease("b" * 64, NET, CFG, None, undo) == first
        undo.commit()
    assert settled == ["vethold"]
    records.release_leases("b" * 64)
    with Undo("lease") as undo:  # asked for by --ip: the same wait
        assert leases.lease("c" * 64, NET, CFG, first, undo) == first
        undo.commit()
    assert settled == ["vethold", "vethold"]
    leases.retiring.release("vethold")  # the deletion is done: nobody waits any more
    records.release_leases("c" * 64)
    with Undo("lease") as undo:
        assert leases.lease("d" * 64, NET, CFG, None, undo) == first
        undo.commit()
    assert settled == ["vethold", "vethold"]
    store.close()


def test_pick_address_starts_at_the_floor_and_ignores_one_outside_the_range() -> None:
    taken = {IPv4Address("10.7.0.9")}
    assert pick_address(SUBNET, None, taken, start_at=int(IPv4Address("10.7.0.9"))) == (
        IPv4Address("10.7.0.10")
    )
    assert pick_address(SUBNET, None, taken, start_at=10**12) == IPv4Address("10.7.0.1")
