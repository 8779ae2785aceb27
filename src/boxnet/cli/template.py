"""A subset of Go's text/template, for `inspect -f` and `--format` on listings.

Enough for the idioms Docker users type: `{{.State.Pid}}`, `{{.NetworkSettings.IPAddress}}`,
`{{json .Config}}`, `{{index .NetworkSettings.Networks "bridge"}}`,
`{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}`, `{{range $k, $v := .X}}`,
`{{if .State.Running}}…{{else}}…{{end}}`, `{{with …}}`, pipelines (`{{.Name | upper}}`),
parentheses with field access (`{{(index .X "n").IPAddress}}`) and `{{-`/`-}}` trimming.
The data is the decoded API JSON, so fields are map keys: a missing one prints `<no value>`
as Go does for maps.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

_ACTION_RE = re.compile(r"\{\{(-\s+)?(.*?)(\s+-)?\}\}", re.S)
_TOKEN_RE = re.compile(
    r'\s*(?:(?P<str>"(?:\\.|[^"\\])*"|`[^`]*`)|(?P<num>-?\d+)|(?P<op>:=|[()|,])'
    r"|(?P<word>[$.]?[A-Za-z0-9_$.]*))"
)
_NO_VALUE = "<no value>"


def _bad(reason: str) -> InvalidArgument:
    return InvalidArgument(
        f"template: {reason}", 'e.g. -f "{{.State.Pid}}" or -f "{{json .NetworkSettings}}"'
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise _bad(f'unexpected "{text[pos:]}" in action')
        kind = match.lastgroup or "word"
        value = match.group(kind) if match.lastgroup else ""
        if value:
            tokens.append((kind, value))
        pos = match.end()
    return tokens


def gostr(value: Any) -> str:
    """fmt's %v for decoded JSON values."""
    if value is None:
        return _NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        inner = " ".join(
            f"{k}:{gostr(v) if v is not None else '<nil>'}" for k, v in sorted(value.items())
        )
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(gostr(v) if v is not None else "<nil>" for v in value) + "]"
    return str(value)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            if isinstance(value, dict):
                return None
            raise _bad(f"index of {gostr(key)}: not found") from None
    return value


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "index": _index,
    "len": lambda v: len(v) if v is not None else 0,
    "upper": lambda v: gostr(v).upper(),
    "lower": lambda v: gostr(v).lower(),
    "title": lambda v: gostr(v).title(),
    "join": lambda v, sep: sep.join(gostr(x) for x in v or []),
    "split": lambda v, sep: gostr(v).split(sep),
    "print": lambda *v: "".join(gostr(x) for x in v),
    "println": lambda *v: " ".join(gostr(x) for x in v) + "\n",
    "printf": lambda fmt, *v: (
        fmt.replace("%v", "%s")
        % tuple(gostr(x) if not isinstance(x, int | float) else x for x in v)
    ),
    "not": lambda v: not v,
    "and": lambda *v: next((x for x in v if not x), v[-1]),
    "or": lambda *v: next((x for x in v if x), v[-1]),
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


class _Scope:
    def __init__(self, dot: Any, root: Any, variables: dict[str, Any]) -> None:
        self.dot, self.root, self.vars = dot, root, variables


def _fields(value: Any, path: str) -> Any:
    for name in filter(None, path.split(".")):
        value = value.get(name) if isinstance(value, dict) else None
    return value


class _Pipeline:
    """Commands separated by `|`; each command's result is the last argument of the next."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens

    def eval(self, scope: _Scope) -> Any:
        value, pos, piped = None, 0, False
        while pos < len(self.tokens):
            args: list[Any] = []
            func = None
            kind, text = self.tokens[pos]
            if kind == "word" and text[0] not in ".$" and not text[0].isdigit():
                if text in ("true", "false", "nil"):
                    args.append({"true": True, "false": False, "nil": None}[text])
                elif text not in FUNCS:
                    raise _bad(f'function "{text}" not defined')
                else:
                    func = FUNCS[text]
                pos += 1
            while pos < len(self.tokens) and self.tokens[pos] != ("op", "|"):
                arg, pos = self._arg(pos, scope)
                args.append(arg)
            if piped:
                args.append(value)
            if func is not None:
                try:
                    value = func(*args)
                except (TypeError, ValueError) as err:
                    raise _bad(f"error calling function: {err}") from None
            elif len(args) == 1:
                value = args[0]
            else:
                raise _bad("can't give an argument to a non-function")
            pos += 1  # skip "|"
            piped = True
        return value

    def _arg(self, pos: int, scope: _Scope) -> tuple[Any, int]:
        kind, text = self.tokens[pos]
        if kind == "str":
            import ast  # Go and Python string escapes agree for what templates use

            return (text[1:-1] if text[0] == "`" else ast.literal_eval(text)), pos + 1
        if kind == "num":
            return int(text), pos + 1
        if text == "(":
            depth, end = 1, pos + 1
            while end < len(self.tokens) and depth:
                depth += {"(": 1, ")": -1}.get(self.tokens[end][1], 0)
                end += 1
            if depth:
                raise _bad("unclosed left paren")
            value = _Pipeline(self.tokens[pos + 1 : end - 1]).eval(scope)
            if end < len(self.tokens) and self.tokens[end][1].startswith("."):
                return _fields(value, self.tokens[end][1]), end + 1
            return value, end
        if text.startswith("."):
            return _fields(scope.dot, text), pos + 1
        if text.startswith("$"):
            name, _, path = text.partition(".")
            if name == "$":
                return _fields(scope.root, path), pos + 1
            if name not in scope.vars:
                raise _bad(f"undefined variable: {name}")
            return _fields(scope.vars[name], path), pos + 1
        raise _bad(f'unexpected "{text}" in operand')


Node = tuple  # (kind, ...): see _parse


def _parse(text: str) -> list[Node]:
    """Return nodes: ("text", s) | ("out", pipe) | ("if"/"with"/"range", pipe, vars, body, else)."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION_RE.finditer(text):
        literal = text[pos : match.start()]
        pieces.append(("text", literal.rstrip() if match.group(1) else literal))
        pos = match.end()
        pieces.append(("action", match.group(2).strip()))
        if match.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    if "{{" in text[pos:]:
        raise _bad("unclosed action")
    pieces.append(("text", text[pos:]))
    nodes, _, end = _block(pieces, 0)
    if end is not None:
        raise _bad(f"unexpected {{{{{end}}}}}")
    return nodes


def _block(pieces: list[tuple[str, str]], index: int) -> tuple[list[Node], int, str | None]:
    nodes: list[Node] = []
    while index < len(pieces):
        kind, body = pieces[index]
        index += 1
        if kind == "text":
            nodes.append(("text", body))
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("end", "else"):
            return nodes, index, word
        if body.startswith("/*"):
            continue  # a comment
        if word in ("if", "with", "range"):
            tokens = _tokens(body[len(word) :])
            names: list[str] = []
            if ("op", ":=") in tokens:
                split = tokens.index(("op", ":="))
                names = [t[1] for t in tokens[:split] if t[0] == "word"]
                tokens = tokens[split + 1 :]
            inner, index, end = _block(pieces, index)
            other: list[Node] = []
            if end == "else":
                other, index, end = _block(pieces, index)
            if end != "end":
                raise _bad(f"unexpected EOF: {{{{{word}}}}} has no {{{{end}}}}")
            nodes.append((word, _Pipeline(tokens), names, inner, other))
        else:
            nodes.append(("out", _Pipeline(_tokens(body))))
    return nodes, index, None


def _exec(nodes: list[Node], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "out":
            out.append(gostr(node[1].eval(scope)))
        else:
            word, pipe, names, inner, other = node
            value = pipe.eval(scope)
            if word == "range" and value:
                items = sorted(value.items()) if isinstance(value, dict) else enumerate(value)
                for key, item in items:
                    variables = dict(scope.vars)
                    if len(names) == 2:
                        variables[names[0]], variables[names[1]] = key, item
                    elif names:
                        variables[names[0]] = item
                    _exec(inner, _Scope(item, scope.root, variables), out)
            elif word != "range" and value:
                variables = dict(scope.vars)
                if names:
                    variables[names[0]] = value
                dot = value if word == "with" else scope.dot
                _exec(inner, _Scope(dot, scope.root, variables), out)
            else:
                _exec(other, scope, out)


def render(template: str, data: Any) -> str:
    """Render `template` with `data` as `.` and `$`; raises InvalidArgument on a bad template."""
    out: list[str] = []
    _exec(_parse(template), _Scope(data, data, {"$": data}), out)
    return "".join(out)
