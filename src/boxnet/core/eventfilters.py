"""`GET /events?filters=`: which events a reader wants.

The value is JSON in either encoding Docker clients send: the CLI's map of bools
`{"type": {"container": true}}` or docker-py's lists `{"type": ["container"]}`. Values of one key
are alternatives; different keys must all hold (moby's events filter). Unknown keys are refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from boxnet.core.events import Event
from boxnet.parsing import filters

KEYS = ("type", "container", "network", "event", "label", "image", "scope", "daemon")
Filters = filters.Filters


def parse(text: str | None) -> Filters:
    """The `filters` query value -> {key: [values]} (parsing.filters: both encodings)."""
    return filters.parse(text, KEYS)


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
