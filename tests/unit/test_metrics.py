"""core/metrics: the bounded recorder behind GET /boxnet/metrics (used by bench/)."""

from __future__ import annotations

import pytest

from boxnet.core import metrics


def test_samples_are_recorded_in_ms_and_counted() -> None:
    before = metrics.snapshot().get("unit-a", {}).get("Count", 0)
    metrics.record("unit-a", 0.0015)
    metrics.record("unit-a", 0.002)
    snap = metrics.snapshot()["unit-a"]
    assert snap["Count"] == before + 2
    assert snap["RecentMs"][-2:] == [1.5, 2.0]


def test_recent_samples_are_bounded_but_the_count_is_not() -> None:
    for _ in range(metrics.KEEP + 10):
        metrics.record("unit-b", 0.001)
    snap = metrics.snapshot()["unit-b"]
    assert snap["Count"] == metrics.KEEP + 10
    assert len(snap["RecentMs"]) == metrics.KEEP


def test_a_failed_body_records_nothing() -> None:
    with metrics.timed("unit-c"):
        pass
    with pytest.raises(RuntimeError), metrics.timed("unit-c"):
        raise RuntimeError("setup failed")
    assert metrics.snapshot()["unit-c"]["Count"] == 1
