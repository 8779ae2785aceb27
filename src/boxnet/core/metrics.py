"""Recent durations of the daemon's own sandbox work, served at GET /boxnet/metrics for bench/.

Measured inside the daemon so the benchmark can tell the daemon's share (netns, veth, addresses,
lease, DNAT) from the CLI's start-up and the HTTP round trip. Bounded: the last KEEP samples of
each kind plus a running count, so a long-lived daemon never grows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

KEEP = 4096

_lock = threading.Lock()
_recent: dict[str, deque[float]] = {}
_count: dict[str, int] = {}


def record(kind: str, seconds: float) -> None:
    with _lock:
        _recent.setdefault(kind, deque(maxlen=KEEP)).append(seconds)
        _count[kind] = _count.get(kind, 0) + 1


@contextmanager
def timed(kind: str) -> Iterator[None]:
    """Record how long the body took; a body that raises records nothing (a failed start is
    not a sample of the work it failed to do)."""
    began = time.perf_counter()
    yield
    record(kind, time.perf_counter() - began)


def snapshot() -> dict[str, dict[str, object]]:
    """{kind: {"Count": samples ever, "RecentMs": [the last KEEP, oldest first]}}."""
    with _lock:
        return {
            kind: {"Count": _count[kind], "RecentMs": [round(s * 1000, 4) for s in samples]}
            for kind, samples in _recent.items()
        }
