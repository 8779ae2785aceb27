"""`GET /events?filters=`: which events a reader wants.

The value is JSON in either encoding Docker clients send: the CLI's map of bools
`{"type": {"container": true}}` or docker-py's lists `{"type": ["container"]}`. Values of one key
are alternatives; different keys must all hold (moby's events filter). Unknown keys are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from boxnet.core.events import Event
from boxnet.errors import InvalidArgument

KEYS = ("type", "container", "network", "event", "label", "image", "scope", "daemon")
Filters = dict[str, list[str]]


def parse(text: str | None) -> Filters:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidArgument(
            f"invalid filters {text!r}: not JSON", hint='e.g. {"type": ["container"]}'
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
        if key not in KEYS:
            raise InvalidArgument(
                f"invalid filter '{key}'", hint="valid filters: " + ", ".join(sorted(KEYS))
            )
        if values:
            out[key] = values
    return out


def matches(event: Event, filters: Mapping[str, list[str]]) -> bool:
    attrs = event.attributes
    for key, values in filters.items():
        if key == "type":
            ok = event.type in values
        elif key == "event":  # "exec_start: sh" is matched by "exec_start"
            ok = event.action in values or event.action.split(":", 1)[0] in values
        elif key in ("container", "network"):
            ok = event.type == key and any(_names(event, v) for v in values)
        elif key == "image":
            ok = any(attrs.get("image") in (v, v + ":latest") for v in values)
        elif key == "label":
            ok = any(_label(attrs, v) for v in values)
        elif key == "scope":
            ok = "local" in values
        else:  # daemon: there is one
            ok = True
        if not ok:
            return False
    return True


def _names(event: Event, ref: str) -> bool:
    """By id, id prefix or name, as `docker events --filter container=web` means it."""
    ref = ref.lstrip("/")
    return bool(ref) and (event.actor_id.startswith(ref) or event.attributes.get("name") == ref)


def _label(attrs: Mapping[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in attrs and (not sep or attrs[key] == value)
