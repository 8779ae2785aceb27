"""The in-memory hints of Records (leased addresses, reserved host ports) stay in step with the
rows: after any sequence of leases, releases, port reservations and deletions, a fresh Records
reading the same database answers the same."""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from pathlib import Path

from boxnet.model import PortBinding
from boxnet.store.db import Store
from boxnet.store.records import Records

NETS = ("n1", "n2")


def test_hints_match_the_database(tmp_path: Path) -> None:
    store = Store(tmp_path / "boxnet.db")
    records = Records(store)
    rng = random.Random(11)
    for net in NETS:
        records.leased_ips(net)  # read once: from now on only the hints are used
    records.used_host_ports("tcp")
    for step in range(400):  # bounded random churn
        cid = f"{rng.randint(1, 12):064x}"
        action = rng.random()
        if action < 0.35:
            net = rng.choice(NETS)
            records.lease(net, IPv4Address(f"10.0.0.{rng.randint(2, 30)}"), cid, rng.random() < 0.2)
        elif action < 0.55:
            port = rng.randint(40000, 40040)
            ip = rng.choice([IPv4Address("0.0.0.0"), IPv4Address("127.0.0.1")])
            try:
                records.add_ports(cid, [(PortBinding(80, "tcp", ip, port), "10.0.0.2")])
            except Exception:  # the UNIQUE constraint: that pair is taken
                pass
        elif action < 0.7:
            records.release_leases(cid, rng.choice([None, *NETS]), keep_static=rng.random() < 0.5)
        elif action < 0.85:
            records.release_ports(cid)
        else:
            records.delete_container(cid)
        fresh = Records(store)
        for net in NETS:
            assert records.leased_ips(net) == fresh.leased_ips(net), f"step {step}"
        for low, high in ((1, 65535), (40010, 40012), (40000, 40040)):
            assert records.used_host_ports("tcp", low, high) == fresh.used_host_ports(
                "tcp", low, high
            ), f"step {step}"
    store.close()


def test_leased_ips_is_a_copy(tmp_path: Path) -> None:
    records = Records(Store(tmp_path / "boxnet.db"))
    taken = records.leased_ips("n1")
    taken.add(IPv4Address("10.0.0.9"))  # the caller's scratch set (pick_address adds to it)
    assert records.leased_ips("n1") == set()
