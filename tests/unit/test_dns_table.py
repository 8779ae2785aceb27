"""NameTable's copy-on-write updates answer exactly like a table built from scratch, and never
change a table already published (the resolver thread may be reading it)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from boxnet.dns.table import NameEntry, NameTable

NETS = ("net-a", "net-b", "net-c")


def entries_of(rng: random.Random, cid: str, n: int) -> tuple[NameEntry, ...]:
    nets = rng.sample(NETS, rng.randint(1, len(NETS)))
    return tuple(
        NameEntry(
            container_id=cid,
            network_id=net,
            ip=IPv4Address(f"10.{NETS.index(net)}.0.{n}"),
            names=(f"c{n}", cid[:12], *(["shared"] if rng.random() < 0.3 else [])),
            internal=net == "net-c",
        )
        for net in nets
    )


def answers(table: NameTable, askers: list[str], names: list[str]) -> list[object]:
    out: list[object] = []
    for asker in askers:
        out.append((table.knows(asker), table.may_forward(asker)))
        for name in names:
            out.append(table.lookup(asker, name))
        for i in range(1, 40):
            for k in range(len(NETS)):
                out.append(table.reverse(asker, f"{i}.0.{k}.10.in-addr.arpa"))
    return out


def test_updates_match_a_rebuild_and_leave_published_tables_alone() -> None:
    rng = random.Random(7)
    live: dict[str, tuple[NameEntry, ...]] = {}
    table = NameTable()
    askers = [f"{n:064x}" for n in range(1, 40)]
    names = [f"c{n}" for n in range(1, 40)] + ["shared", "SHARED.", "nope"]
    for step in range(120):  # bounded: starts, exits and reconnects in random order
        n = rng.randint(1, 39)
        cid = f"{n:064x}"
        before = answers(table, askers, names)
        old = table
        if cid in live and rng.random() < 0.5:
            del live[cid]
            table = table.without_container(cid)
        else:
            live.pop(cid, None)  # a re-added container's addresses come last, as in the table
            live[cid] = entries_of(rng, cid, n)
            table = table.with_container(cid, live[cid])
        assert answers(old, askers, names) == before, f"step {step} changed a published table"
        rebuilt = NameTable(e for group in live.values() for e in group)
        assert answers(table, askers, names) == answers(rebuilt, askers, names), f"step {step}"


def test_a_removed_container_is_unknown_and_its_names_are_gone() -> None:
    cid = "a" * 64
    table = NameTable().with_container(
        cid, [NameEntry(cid, "net-a", IPv4Address("10.0.0.2"), ("web", cid[:12]))]
    )
    assert table.lookup(cid, "web") == [IPv4Address("10.0.0.2")]
    empty = table.without_container(cid)
    assert not empty.knows(cid)
    assert empty.lookup(cid, "web") is None
    assert table.lookup(cid, "web") == [IPv4Address("10.0.0.2")]  # the old one is untouched
