"""Timestamps in Docker's formats."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_rfc3339() -> str:
    """RFC 3339 with nanosecond-style precision, like Docker's `Created`."""
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch (0.0 for an empty or zero time)."""
    if not text or text.startswith("0001-"):
        return 0.0
    main, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


ZERO_TIME = "0001-01-01T00:00:00Z"
