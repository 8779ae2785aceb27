"""A tolerant JSON parser that finds every mistake it can recognise in one pass.

It walks the tokens of `jsonlex` the way a strict parser would, but where a person typically slips
(a missing or trailing comma, an unquoted key or word, `=` for `:`, Python's `True`) it records an
issue and carries on as if the fix had been made. Anything it does not recognise is reported once
and the scan stops there, so one real mistake never turns into a page of follow-on noise.

It also records where each key and list element starts (for "file:line:col" in later messages) and
which keys appear twice in one object (JSON silently keeps the last one).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field

from boxnet.config.jsonlex import Issue, Kind, Token, tokenize

Path = tuple[str | int, ...]  # ("default-address-pools", 1, "size")

_MAX_DEPTH = 64  # daemon.json is two levels deep; anything deeper is a mistake, not a config
_VALUE_START = {Kind.LBRACE, Kind.LBRACK, Kind.STRING, Kind.NUMBER, Kind.WORD}
_KEY_START = {Kind.STRING, Kind.NUMBER, Kind.WORD}
_PYTHON_WORDS = {"True": "true", "False": "false", "None": "null", "TRUE": "true", "FALSE": "false"}


@dataclass(frozen=True)
class Duplicate:
    key: str
    path: Path  # where the repeated key lives
    first: int  # offset of the first occurrence
    again: int  # offset of this occurrence


@dataclass
class Scan:
    issues: list[Issue] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    positions: dict[Path, int] = field(default_factory=dict)  # member key / list element offsets


class _Stop(Exception):
    """An unrecognised mistake: stop scanning, keep what was found so far."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens, issues = tokenize(text)
        self.scan = Scan(issues=issues)
        self.i = 0

    # -- helpers -------------------------------------------------------------------------------

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def issue(self, offset: int, message: str, hint: str | None = None, width: int = 1) -> None:
        self.scan.issues.append(Issue(offset, message, hint, width))

    def stop(self, token: Token | None, expected: str) -> _Stop:
        if token is None:
            self.issue(len(self.text), f"the file ends too early: expected {expected}")
        else:
            found = f"character {token.text!r}" if token.kind is Kind.JUNK else repr(token.text)
            self.issue(
                token.start, f"unexpected {found}: expected {expected}", None, len(token.text)
            )
        return _Stop()

    def missing_comma(self, prev_end: int, nxt: Token) -> None:
        line = self.line_of(prev_end)
        if self.line_of(nxt.start) > line:
            hint = f"add ',' at the end of line {line}: every member but the last ends with ','"
            self.issue(prev_end, f"missing comma after line {line}", hint)
        else:
            self.issue(nxt.start, f"missing comma before {nxt.text}", "add ',' between the two")

    def trailing_comma(self, comma: Token) -> None:
        line = self.line_of(comma.start)
        msg = "trailing comma: JSON allows no ',' after the last item"
        self.issue(comma.start, msg, f"delete the ',' on line {line}")

    # -- grammar -------------------------------------------------------------------------------

    def document(self) -> None:
        first = self.peek()
        if first is None:
            if self.text.strip():
                self.issue(0, "the file holds no JSON object", "write {} to use the defaults")
            else:
                hint = "write {} to use the defaults, or delete the file"
                self.issue(0, "the file is empty", hint)
            return
        if first.kind is not Kind.LBRACE:
            msg = 'the configuration must be one JSON object: { "key": value, ... }'
            self.issue(first.start, msg, None, len(first.text))
        self.value((), 0)
        extra = self.peek()
        if extra is not None:
            raise self.stop(extra, "nothing after the closing '}'")

    def value(self, path: Path, depth: int) -> int:
        """Parse one value; return the offset just after it (for missing-comma positions)."""
        token = self.peek()
        if token is None or token.kind not in _VALUE_START:
            raise self.stop(token, "a value")
        if token.kind in (Kind.LBRACE, Kind.LBRACK):
            if depth >= _MAX_DEPTH:
                raise self.stop(token, f"at most {_MAX_DEPTH} levels of nesting")
            if token.kind is Kind.LBRACE:
                return self.object(path, depth + 1)
            return self.array(path, depth + 1)
        self.take()
        if token.kind is Kind.WORD and token.text not in ("true", "false", "null"):
            if token.text in _PYTHON_WORDS:
                fixed = _PYTHON_WORDS[token.text]
                msg = f"JSON literals are lowercase: {token.text} → {fixed}"
            else:
                fixed = f'"{token.text}"'
                msg = f"JSON needs double quotes around text: {token.text} → {fixed}"
            self.issue(token.start, msg, None, len(token.text))
        return token.end

    def key(self, token: Token) -> str:
        if token.kind is not Kind.STRING:
            msg = f'JSON needs double quotes around keys: {token.text} → "{token.text}"'
            self.issue(token.start, msg, None, len(token.text))
            return token.text
        try:
            decoded = json.loads(f'"{token.inner}"')
        except ValueError:
            return token.inner  # a bad escape: json.loads reports it once the rest is fixed
        return decoded if isinstance(decoded, str) else token.inner

    def object(self, path: Path, depth: int) -> int:
        opener = self.take()
        seen: dict[str, int] = {}
        prev_end: int | None = None  # end of the previous member's value, None after a ','
        comma: Token | None = None
        while True:
            token = self.peek()
            if token is None:
                line = self.line_of(opener.start)
                raise self.stop(token, f"'}}' to close the object opened on line {line}")
            if token.kind is Kind.RBRACE:
                if comma is not None:
                    self.trailing_comma(comma)
                return self.take().end
            if token.kind is Kind.COMMA:
                if prev_end is None:
                    raise self.stop(token, 'a key in double quotes or "}"')
                comma, prev_end = self.take(), None
                continue
            if token.kind not in _KEY_START:
                raise self.stop(
                    token, "',' or '}'" if prev_end is not None else "a key in double quotes"
                )
            if prev_end is not None:
                self.missing_comma(prev_end, token)
            name = self.key(self.take())
            member = (*path, name)
            if name in seen:
                self.scan.duplicates.append(Duplicate(name, path, seen[name], token.start))
            seen[name] = token.start
            self.scan.positions[member] = token.start
            self.colon(name)
            prev_end, comma = self.value(member, depth), None

    def colon(self, name: str) -> None:
        token = self.peek()
        if token is not None and token.kind is Kind.COLON:
            self.take()
        elif token is not None and token.kind is Kind.EQUALS:
            self.issue(token.start, "JSON separates key and value with ':', not '='")
            self.take()
        elif token is not None and token.kind in _VALUE_START:
            self.issue(token.start, f"missing ':' after the key \"{name}\"")
        else:
            raise self.stop(token, f"':' after the key \"{name}\"")

    def array(self, path: Path, depth: int) -> int:
        opener = self.take()
        prev_end: int | None = None
        comma: Token | None = None
        index = 0
        while True:
            token = self.peek()
            if token is None:
                line = self.line_of(opener.start)
                raise self.stop(token, f"']' to close the list opened on line {line}")
            if token.kind is Kind.RBRACK:
                if comma is not None:
                    self.trailing_comma(comma)
                return self.take().end
            if token.kind is Kind.COMMA:
                if prev_end is None:
                    raise self.stop(token, "a value or ']'")
                comma, prev_end = self.take(), None
                continue
            if token.kind not in _VALUE_START:
                raise self.stop(token, "',' or ']'" if prev_end is not None else "a value or ']'")
            if prev_end is not None:
                self.missing_comma(prev_end, token)
            self.scan.positions[(*path, index)] = token.start
            prev_end, comma = self.value((*path, index), depth), None
            index += 1


def lint(text: str) -> Scan:
    parser = _Parser(text)
    with contextlib.suppress(_Stop):  # stopped at an unknown mistake: report what was found
        parser.document()
    parser.scan.issues.sort(key=lambda issue: issue.offset)
    return parser.scan
