"""The lease floor (Records' hint of where the lowest free address may be) never changes which
address a start gets: after any churn of leases, static leases and releases, Sandboxes._lease
picks exactly the lowest free address a full scan of a fresh Records finds."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import SimpleNamespace

from boxnet.core.sandbox import Sandboxes
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
    sandboxes = SimpleNamespace(records=records)
    rng = random.Random(5)
    holders: list[str] = []
    for step in range(300):  # bounded random churn
        if rng.random() < 0.6 and len(holders) < 55:
            owner = f"{step:064x}"
            fresh = Records(store)
            taken = fresh.leased_ips("n1") | reserved_addresses(SUBNET, CFG.gateway, ["10.7.0.5"])
            expected = pick_address(SUBNET, None, taken)
            with Undo("lease") as undo:
                got = Sandboxes._lease(sandboxes, owner, NET, CFG, None, undo)  # type: ignore[arg-type]
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


def test_pick_address_starts_at_the_floor_and_ignores_one_outside_the_range() -> None:
    taken = {IPv4Address("10.7.0.9")}
    assert pick_address(SUBNET, None, taken, start_at=int(IPv4Address("10.7.0.9"))) == (
        IPv4Address("10.7.0.10")
    )
    assert pick_address(SUBNET, None, taken, start_at=10**12) == IPv4Address("10.7.0.1")
