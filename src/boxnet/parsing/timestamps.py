"""Docker CLI's --since/--until values for `logs`: what the Engine API's since/until take.

Accepted like `docker logs`: a Go duration before now ("10m", "1h30m", "1.5h"), an RFC 3339
date or time ("2026-12-04", "2026-12-04T16:53", "2026-12-04T16:53:58.5Z", with an offset or in
local time), or a UNIX timestamp ("1764866038", "1764866038.5"), passed through.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from boxnet.errors import InvalidArgument

_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_UNIT_NS["h"] = 3600 * 10**9
_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)"
_DURATION = re.compile(rf"^[-+]?(?:{_PART})+$")
_UNIX = re.compile(r"^\d+(\.\d+)?$")
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")  # of the seconds, in a date-time


def duration_ns(text: str) -> int | None:
    """A Go duration ("1h30m", "-5s") in nanoseconds; None if text is not one."""
    if not _DURATION.match(text):
        return None
    total = sum(float(n) * _UNIT_NS[unit] for n, unit in re.findall(_PART, text))
    return int(-total if text.startswith("-") else total)


def api_timestamp(text: str, option: str, now_ns: int | None = None) -> str:
    """The API's since/until value ("SECONDS" or "SECONDS.NANOSECONDS") for a CLI value."""
    text = text.strip()
    now = time.time_ns() if now_ns is None else now_ns
    if text != "0" and (delta := duration_ns(text)) is not None:
        return str((now - delta) // 10**9)
    if _UNIX.match(text):
        return text
    # datetime keeps microseconds: take the fraction (up to nanoseconds) apart.
    fraction = _FRACTION.search(text)
    nanos = int((fraction.group(1) + "000000000")[:9]) if fraction else 0
    if fraction:
        text = text[: fraction.start()] + text[fraction.end() :]
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidArgument(
            f"invalid {option} {text!r}: failed to parse value as time or duration",
            "e.g. 10m, 1h30m, 2026-12-04T16:53:58Z or a UNIX timestamp",
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # no zone given: local time, as Docker
    return f"{int(when.timestamp())}.{nanos:09d}"
