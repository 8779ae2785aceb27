"""Typed access to a decoded JSON request body: the one place request bodies are read.

Any HTTP client may send anything, so every read says what it expects; a wrong type at any
depth becomes an InvalidArgument (HTTP 400) naming the JSON path, e.g.
`IPAM.Config[0]: expected an object, got a string`. JSON null reads as "absent", like Docker.

`decode` is the edge: it turns the raw bytes into JSON and refuses text that is not valid
Unicode (invalid UTF-8, or a lone surrogate written as a `\\udcff` escape) naming the field,
so no later layer meets a string it cannot encode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from boxnet.errors import InvalidArgument

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def describe(value: object) -> str:
    """A JSON value's kind as a user would say it: `a string`, `an object`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def child_path(path: str, key: str) -> str:
    """`IPAM` + `Config` -> `IPAM.Config`; keys that are not identifiers are quoted."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_quote(key)}]"


def _quote(text: str) -> str:
    return json.dumps(text)  # ensure_ascii: lone surrogates and controls print as escapes


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def decode(raw: bytes) -> Any:
    """The body's JSON ({} when empty); invalid JSON or text that is not Unicode is a 400."""
    if not raw:
        return {}
    # surrogateescape: an invalid UTF-8 byte inside a string becomes a lone surrogate, which
    # check_text below then reports with the field's path (strict decoding could not say where).
    text = raw.decode("utf-8", errors="surrogateescape")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"malformed JSON in the request body: {_plain(str(exc))}") from exc
    check_text(value)
    return value


def _plain(text: str) -> str:
    return text.encode("utf-8", errors="backslashreplace").decode()


def check_text(value: Any, path: str = "") -> None:
    """Refuse any string (object key or value) that UTF-8 cannot encode."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            _check_string(node, where or "request body")
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
        elif isinstance(node, dict):
            for key, item in node.items():
                _check_string(key, f"{where or 'request body'}: key {_quote(key)}")
                stack.append((item, child_path(where, key)))


def _check_string(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise InvalidArgument(
            f"{where}: invalid text {_quote(bad)} (invalid UTF-8 or a lone surrogate)",
            hint="send text as valid UTF-8",
        ) from None


def check_parameter(name: str, value: str) -> None:
    """Path and query values: no control characters (no name, id or option holds one)."""
    if _CONTROL.search(value):
        raise InvalidArgument(f"invalid {name} {_quote(value)}: control characters are not allowed")


class Field:
    """A JSON value and where it sits in the body; readers check the type and say where."""

    __slots__ = ("path", "value")

    def __init__(self, value: Any, path: str = "") -> None:
        self.value = value
        self.path = path

    # -- navigation --------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Field:
        """The member `key` of this object (null when absent or when this is null)."""
        return Field(self.obj().get(key), child_path(self.path, key))

    def entries(self) -> Iterator[tuple[str, Field]]:
        """The members of an object, in order (none when null)."""
        for key, value in self.obj().items():
            yield key, Field(value, child_path(self.path, key))

    def items(self) -> list[Field]:
        """The entries of a list (none when null)."""
        value = self.value
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error("a list")
        return [Field(v, f"{self.path}[{i}]") for i, v in enumerate(value)]

    # -- readers -----------------------------------------------------------------------------
    @property
    def absent(self) -> bool:
        return self.value is None

    def obj(self) -> dict[str, Any]:
        if self.value is None:
            return {}
        if not isinstance(self.value, dict):
            raise self.error("an object")
        return self.value

    def text(self, default: str = "", required: bool = False, nul_free: bool = False) -> str:
        """A string; absent (or "" when required) gives `default` or a 'required' error.
        `nul_free` for what reaches execve or a path (argv, environment, directories)."""
        value = self.value
        if value is not None and not isinstance(value, str):
            raise self.error("a string")
        if required and not value:
            raise InvalidArgument(f"{self.where}: required (a non-empty string)")
        if nul_free and value and "\x00" in value:
            raise InvalidArgument(f"{self.where}: a NUL character is not allowed here")
        return value or default

    def optional_text(self) -> str | None:
        """A string, or None when absent or empty."""
        return self.text() or None

    def flag(self) -> bool:
        value = self.value
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error("true or false")
        return value

    def integer(self, low: int, high: int, default: int) -> int:
        value = self.value
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error("an integer")
        if not low <= value <= high:
            raise InvalidArgument(f"{self.where}: {value} is out of range ({low}..{high})")
        return value

    def strings(self, allow_single: bool = False, nul_free: bool = False) -> tuple[str, ...]:
        """A list of strings (absent: empty); `allow_single` also takes one bare string."""
        if allow_single and isinstance(self.value, str):
            return (self.text(nul_free=nul_free),)
        return tuple(_str(item, nul_free) for item in self.items())

    def string_map(self) -> dict[str, str]:
        """An object whose values are strings (Options, Labels, AuxiliaryAddresses)."""
        return {key: _str(item) for key, item in self.entries()}

    # -- errors ------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return self.path or "request body"

    def error(self, expected: str) -> InvalidArgument:
        return InvalidArgument(f"{self.where}: expected {expected}, got {describe(self.value)}")


def _str(item: Field, nul_free: bool = False) -> str:
    if not isinstance(item.value, str):
        raise item.error("a string")
    return item.text(nul_free=nul_free)
