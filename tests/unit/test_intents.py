"""The intent journal (store/intents.py) and Undo.always, without a kernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from boxnet.drivers import all_steps
from boxnet.faults import ALL_STEPS
from boxnet.store.db import Store
from boxnet.store.intents import Intents
from boxnet.txn import Undo

SRC = Path(__file__).parents[2] / "src" / "boxnet"


def test_rows_close_with_their_undo_block_and_only_foreign_rows_are_pending(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "boxnet.db")
    mine, earlier = Intents(store), Intents(store)
    left = earlier.begin("hostbridge.create", "br0", {"Saved": {"mtu": 1500}})
    with Undo("ok") as undo:
        mine.begin("network.create", "n1", {}, undo)
        assert [i.kind for i in mine.pending(include_own=True)] == [
            "hostbridge.create",
            "network.create",
        ]
        undo.commit()
    with pytest.raises(RuntimeError), Undo("fails") as undo:
        mine.begin("container.start", "c1", {}, undo)
        raise RuntimeError("boom")
    pending = mine.pending()
    assert [(i.id, i.kind, i.subject, i.payload) for i in pending] == [
        (left, "hostbridge.create", "br0", {"Saved": {"mtu": 1500}})
    ]
    mine.done(left)
    assert mine.pending(include_own=True) == []
    store.close()


def test_always_runs_after_the_rollback() -> None:
    order: list[str] = []
    with pytest.raises(ValueError), Undo("x") as undo:
        undo.always("close", lambda: order.append("close"))
        undo.push("undo", lambda: order.append("undo"))
        raise ValueError
    assert order == ["undo", "close"]


def test_every_fault_step_is_a_point_in_the_code() -> None:
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    named = set(re.findall(r'point\("([a-z.-]+)"\)', text))
    steps = ALL_STEPS + all_steps()  # core's and the LAN's, and every driver's
    assert set(steps) == named
    assert len(steps) == len(set(steps))
