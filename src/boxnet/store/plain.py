"""`plain(record)`: a dataclass record as JSON-ready dicts and lists, without copying its leaves.

dataclasses.asdict deep-copies every leaf value (copy.deepcopy per field), which made turning one
container record into its SQLite document ~0.25 ms, three times per start (issue #20). Records
are immutable and the result goes straight to json.dumps, so the leaves can be shared: addresses,
enums and other non-JSON leaves stay as they are for json.dumps's `default`.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


def plain(value: Any) -> Any:
    """Dataclasses -> dicts (in field order), tuples and lists -> lists, dicts -> dicts."""
    if is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value
