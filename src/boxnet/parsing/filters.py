"""Docker's list filters (`?filters=` of GET /containers/json, /networks): parsing and matching.

The query value is JSON in one of two encodings, both accepted (docs/DOCKER-API.md, P9): the
CLI's map of bools `{"name": {"web": true}}` and docker-py's lists `{"name": ["web"]}`. Values
of one key are alternatives (any may match), except `label`, whose values must all hold;
different keys must all match. Unknown keys are refused with Docker's words, never ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping

from boxnet.errors import InvalidArgument

Filters = dict[str, list[str]]


def parse(text: str | None, allowed: Iterable[str]) -> Filters:
    """The `filters` query value -> {key: [values]}; empty when absent."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidArgument(
            f"invalid filters {text!r}: not JSON",
            hint='e.g. {"name": ["web"]} or {"label": {"tier=front": true}}',
        ) from None
    if not isinstance(raw, dict):
        raise InvalidArgument(f"invalid filters {text!r}: expected a JSON object")
    out: Filters = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            values = [str(v) for v, on in value.items() if on is True or on == "true"]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            values = list(value)
        elif isinstance(value, str):
            values = [value]
        else:
            raise InvalidArgument(f"invalid filter {key!r}: expected a list of strings")
        if values:
            out[key] = values
    allowed = set(allowed)
    for key in out:
        if key not in allowed:
            raise InvalidArgument(
                f"invalid filter '{key}'", hint="valid filters: " + ", ".join(sorted(allowed))
            )
    return out


def from_cli(items: Iterable[str]) -> dict[str, dict[str, bool]]:
    """`--filter KEY=VALUE` flags -> the CLI's JSON encoding."""
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(
                f"bad format of filter (expected name=value): {item}", hint="e.g. --filter name=web"
            )
        out.setdefault(key.strip().lower(), {})[value] = True
    return out


def labels_match(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    """Every `KEY`, `KEY=VALUE` or `KEY!=VALUE` holds for labels."""
    for item in wanted:
        if "!=" in item:
            key, value = item.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in item:
            key, value = item.split("=", 1)
            if labels.get(key) != value:
                return False
        elif item not in labels:
            return False
    return True


def name_matches(pattern: str, name: str) -> bool:
    """Docker matches names as regular expressions (so a plain word is a substring)."""
    try:
        return re.search(pattern, name) is not None or re.search(pattern, "/" + name) is not None
    except re.error as exc:
        raise InvalidArgument(f"invalid name filter {pattern!r}: {exc}") from None


def any_value(filters: Filters, key: str, test: Callable[[str], bool]) -> bool:
    """True when `key` is not filtered on, or one of its values passes `test`."""
    values = filters.get(key)
    return values is None or any(test(v) for v in values)


def boolean(key: str, value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={value}'", hint="use true or false")


def port_set(key: str, value: str) -> set[str]:
    """`80`, `80/udp`, `8000-8002/tcp` -> {"80/tcp", ...} (Docker's publish/expose filters)."""
    ports, _, proto = value.partition("/")
    proto = proto or "tcp"
    first, _, last = ports.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise InvalidArgument(f"invalid filter '{key}={value}'", hint="e.g. 80 or 80/udp") from None
    if not 0 < low <= high <= 65535 or high - low > 65535 or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid filter '{key}={value}'", hint="e.g. 80 or 80/udp")
    return {f"{p}/{proto}" for p in range(low, high + 1)}
