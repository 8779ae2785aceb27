"""One `Setting` (flag text or JSON value) -> one typed value, reporting every problem found.

Flags always arrive as text; file values must already have the right JSON type (a string where a
list is expected is an error naming the expected type, with the corrected JSON as the hint), then
both go through the same text parser, so a value is judged the same wherever it was written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from boxnet.config import netvalues as nv
from boxnet.config.fields import Field, Kind, Setting
from boxnet.config.netvalues import q
from boxnet.config.problems import ConfigProblem
from boxnet.config.textvalues import did_you_mean

INVALID = object()  # the setting was reported as a problem; the caller leaves the default
_POOL_FIELDS = ("base", "size")


class Collector:
    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def add(
        self, key: str | None, source: str, value: str | None, message: str, hint: str | None = None
    ) -> None:
        self.problems.append(ConfigProblem(key, source, value, message, hint))


def _describe(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"the number {json.dumps(value)}"
    return "a list" if isinstance(value, list) else "an object"


def _type_hint(key: str | None, kind: Kind, value: object) -> str | None:
    """The corrected JSON; `key` None for a list item (no key to show)."""
    label = f'"{key}": ' if key else ""
    if value is None:
        return "remove the key to use the default"
    if kind is Kind.STR and isinstance(value, int | float | bool):
        return f'put it in double quotes: {label}"{json.dumps(value)}"'
    if kind is Kind.BOOL and isinstance(value, str) and value.lower() in ("true", "false"):
        return f"write {label}{value.lower()} without quotes"
    if kind is Kind.INT and isinstance(value, str) and value.strip().isdigit():
        return f"write {label}{value.strip()} without quotes"
    if kind in (Kind.LIST, Kind.HOSTS) and isinstance(value, str):
        return f"write {label}{json.dumps([value])}"
    if kind is Kind.POOLS and isinstance(value, dict):
        return f"wrap it in a list: {label}[{json.dumps(value)}]"
    return None


class Converter:
    def __init__(self, report: Collector) -> None:
        self.report = report

    def wrong_type(
        self, f: Field, source: str, value: object, kind: Kind | None = None, name: str = ""
    ) -> object:
        """`name`: the JSON key holding the value when it is not f.key (a pool's "size")."""
        kind = kind or f.kind
        msg = f"expected {kind.value}, got {_describe(value)}"
        hint = _type_hint(name or f.key, kind, value)
        self.report.add(f.key, source, json.dumps(value), msg, hint)
        return INVALID

    def parse(
        self,
        f: Field,
        source: str,
        parse: Callable[[Any], object],
        value: Any,
        shown: str | None = None,
    ) -> object:
        try:
            return parse(value)
        except nv.BadValue as err:
            self.report.add(f.key, source, shown or str(value), err.message, err.hint)
            return INVALID

    def convert(self, f: Field, s: Setting) -> object:
        assert f.parse is not None or f.kind is Kind.BOOL
        value = s.value
        if f.kind is Kind.BOOL:
            if not s.from_file:
                return self.parse(f, s.source, nv.parse_bool_text, value)
            return value if isinstance(value, bool) else self.wrong_type(f, s.source, value)
        assert f.parse is not None
        if f.kind is Kind.STR:
            if not isinstance(value, str):
                return self.wrong_type(f, s.source, value)
            return self.parse(f, s.source, f.parse, value)
        if f.kind is Kind.INT:
            if not s.from_file:
                number = self.parse(f, s.source, nv.parse_uint_text, value)
            elif isinstance(value, int) and not isinstance(value, bool):
                number = value
            else:
                number = self.wrong_type(f, s.source, value)
            return INVALID if number is INVALID else self.parse(f, s.source, f.parse, number)
        if f.kind is Kind.HOSTS:
            return self.hosts(f, s)
        if not isinstance(value, list):
            return self.wrong_type(f, s.source, value)
        if f.kind is Kind.POOLS and not value:
            hint = "remove the key to keep the default pools"
            self.report.add(
                f.key, s.source, "[]", "an empty list leaves no pool for new networks", hint
            )
            return INVALID
        items = [self.item(f, s, i, item) for i, item in enumerate(value)]
        return INVALID if any(item is INVALID for item in items) else tuple(items)

    def item(self, f: Field, s: Setting, index: int, item: object) -> object:
        assert f.parse is not None
        source = s.locate(index)
        if f.kind is Kind.POOLS and s.from_file:
            return self.pool(f, s, index, item)
        if not isinstance(item, str):
            msg = f"item {index + 1} must be a string, got {_describe(item)}"
            self.report.add(f.key, source, json.dumps(item), msg, _type_hint(None, Kind.STR, item))
            return INVALID
        return self.parse(f, source, f.parse, item)

    def pool(self, f: Field, s: Setting, index: int, item: object) -> object:
        source = s.locate(index)
        example = '{"base": "10.10.0.0/16", "size": 24}'
        if not isinstance(item, dict):
            msg = f"pool {index + 1} must be an object {example}, got {_describe(item)}"
            self.report.add(f.key, source, json.dumps(item), msg)
            return INVALID
        ok = True
        for name in item:
            if name not in _POOL_FIELDS:
                guess = did_you_mean(name, _POOL_FIELDS)
                hint = f"did you mean '{guess}'?" if guess else "the fields are base and size"
                self.report.add(
                    f.key, s.locate(index, name), name, f"unknown pool field {q(name)}", hint
                )
                ok = False
        for name in _POOL_FIELDS:
            if name not in item:
                self.report.add(
                    f.key,
                    source,
                    json.dumps(item),
                    f"pool {index + 1} has no {q(name)}",
                    f"e.g. {example}",
                )
                ok = False
        base, size = item.get("base"), item.get("size")
        if "base" in item and not isinstance(base, str):
            self.wrong_type(f, s.locate(index, "base"), base, Kind.STR, "base")
            ok = False
        if "size" in item and (not isinstance(size, int) or isinstance(size, bool)):
            self.wrong_type(f, s.locate(index, "size"), size, Kind.INT, "size")
            ok = False
        if not ok:
            return INVALID
        return self.parse(
            f, source, lambda pair: nv.check_pool(*pair), (base, size), json.dumps(item)
        )

    def hosts(self, f: Field, s: Setting) -> object:
        value = s.value
        if not s.from_file:
            return self.parse(f, s.source, f.parse or str, value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return self.wrong_type(f, s.source, value)
        if len(value) != 1:
            msg = f"boxnetd listens on exactly one socket, got {len(value)}"
            self.report.add(
                f.key, s.source, json.dumps(value), msg, 'e.g. "hosts": ["unix:///run/boxnet.sock"]'
            )
            return INVALID
        return self.parse(f, s.locate(0), f.parse or str, value[0])
