"""Docker's log options: `--log-opt max-size=10m --log-opt max-file=3`, HostConfig.LogConfig.

boxnet keeps every container's output in Docker's json-file format (runtime/shimio.py), so the
json-file driver's size options are the ones that apply. Unlike Docker's json-file (unbounded
unless told), a log is capped by default: DEFAULT_MAX_SIZE x DEFAULT_MAX_FILES.
"""

from __future__ import annotations

import re

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of CLI start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 3
DRIVERS = ("", "json-file", "none")
NO_LOG = -1  # the max size that stands for Docker's "none" driver: nothing is logged
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$")
_HINT = "e.g. --log-opt max-size=10m --log-opt max-file=3"


def parse_size(text: str) -> int:
    """Docker's max-size: bytes with an optional binary unit (10m = 10 MiB); -1 = no cap (0)."""
    if text.strip() == "-1":
        return 0
    match = _SIZE.match(text)
    if match is None:
        raise InvalidArgument(f"invalid max-size {text!r}: expected a size like 10m or 512k", _HINT)
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise InvalidArgument(f"invalid max-size {text!r}: must be positive", _HINT)
    return size


def parse_max_file(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise InvalidArgument(f"invalid max-file {text!r}: expected a number, 1 or more", _HINT)
    return int(text)


def from_log_config(value: Any) -> tuple[int, int]:
    """(max size in bytes, 0 = no cap; files kept) from a HostConfig.LogConfig object."""
    if value is None:
        return DEFAULT_MAX_SIZE, DEFAULT_MAX_FILES
    if not isinstance(value, dict):
        raise InvalidArgument("invalid LogConfig: expected an object")
    driver = value.get("Type") or ""
    if driver not in DRIVERS:  # moby's words (docker-py's suite checks them)
        raise InvalidArgument(
            f"logger: no log driver named {driver!r} is registered",
            "boxnet has the json-file and none drivers: leave --log-driver out, or pick one",
        )
    opts = value.get("Config") or {}
    if driver == "none":
        if opts:
            raise InvalidArgument("the none log driver takes no options", _HINT)
        return NO_LOG, 1
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidArgument("invalid LogConfig.Config: expected an object of strings")
    unknown = sorted(set(opts) - {"max-size", "max-file"})
    if unknown:
        raise InvalidArgument(f"unknown log opt {unknown[0]!r} for json-file log driver", _HINT)
    size = parse_size(opts["max-size"]) if "max-size" in opts else DEFAULT_MAX_SIZE
    files = parse_max_file(opts["max-file"]) if "max-file" in opts else DEFAULT_MAX_FILES
    if "max-size" in opts and size == 0:
        files = 1  # no cap: rotation never happens
    return size, files


def log_config(driver: str | None, opts: list[str]) -> dict[str, Any] | None:
    """The CLI's --log-driver/--log-opt KEY=VALUE as a LogConfig (validated), or None."""
    if driver is None and not opts:
        return None
    config: dict[str, str] = {}
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid log opt {opt!r}: expected KEY=VALUE", _HINT)
        config[key] = value
    result = {"Type": driver or "json-file", "Config": config}
    from_log_config(result)
    return result
