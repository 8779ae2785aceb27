"""boxnetd's command line, Docker style, into `Setting`s (text, not yet validated).

argparse alone would exit on the first bad flag and keep the last of a flag given twice; here every
command-line mistake becomes a `ConfigProblem` and is reported with the file's problems. Booleans
follow Docker (Go's pflag): `--icc` means true, `--icc=false` false, and `--icc false` is accepted
too since boxnetd takes no positional arguments that the word could belong to.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from boxnet import API_VERSION, __version__
from boxnet.config.fields import FIELDS, Field, Kind, Setting
from boxnet.config.problems import COMMAND_LINE, ConfigErrors, ConfigProblem
from boxnet.config.textvalues import did_you_mean

_BOOL_META = "true|false"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _Record(argparse.Action):
    """Store (or append) a value and remember how the flag was spelt and whether it was repeated."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        repeatable = self.default == []  # sentinel set by _add for repeatable flags
        current = getattr(namespace, self.dest)
        if repeatable:
            setattr(namespace, self.dest, [*(current or []), values])
        else:
            if current is not None:
                namespace.twice.append((self.dest, option_string or self.dest, current, values))
            setattr(namespace, self.dest, values)
        namespace.spelling[self.dest] = option_string or self.dest


@dataclass
class CommandLine:
    settings: dict[str, Setting] = field(default_factory=dict)
    config_file: str | None = None
    validate: bool | str = False  # str: not yet parsed (Docker boolean text)
    problems: list[ConfigProblem] = field(default_factory=list)


def _dest(f: Field) -> str:
    return "opt_" + f.attr


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="boxnetd",
        description="boxnet daemon: Docker-style container networking",
        allow_abbrev=False,  # Docker has no abbreviations; `--fixed` must not mean --fixed-cidr
    )
    for f in FIELDS:
        _add(parser, f.flags, _dest(f), f.kind, f.metavar, f.help)
    _add(parser, ("--config-file",), "config_file", Kind.STR, "FILE",
         "daemon.json (default /etc/boxnet/daemon.json; absent = defaults)")  # fmt: skip
    _add(parser, ("--validate",), "validate", Kind.BOOL, None, "check the configuration, exit 0/1")
    version = f"boxnetd version {__version__}, API {API_VERSION}"
    parser.add_argument("--version", action="version", version=version)
    return parser


def _add(
    parser: argparse.ArgumentParser,
    flags: tuple[str, ...],
    dest: str,
    kind: Kind,
    metavar: str | None,
    help_text: str,
) -> None:
    if kind is Kind.BOOL:
        parser.add_argument(
            *flags, dest=dest, action=_Record, nargs="?", const="true", default=None,
            metavar=_BOOL_META, help=help_text,
        )  # fmt: skip
    else:
        repeatable = kind in (Kind.LIST, Kind.POOLS)
        parser.add_argument(
            *flags, dest=dest, action=_Record, default=[] if repeatable else None,
            metavar=metavar, help=help_text,
        )  # fmt: skip


def parse_flags(argv: list[str]) -> CommandLine:
    """Parse argv; usage errors (a flag without its value) raise ConfigErrors at once."""
    parser = build_parser()
    namespace = argparse.Namespace(twice=[], spelling={})
    try:
        parsed, unknown = parser.parse_known_args(argv, namespace)
    except _UsageError as err:
        hint = "see boxnetd --help"
        raise ConfigErrors([ConfigProblem(None, COMMAND_LINE, None, str(err), hint)]) from None
    result = CommandLine()
    spelling: dict[str, str] = parsed.spelling
    for f in FIELDS:
        value = getattr(parsed, _dest(f))
        if value is None or value == []:
            continue
        source = f"flag {spelling.get(_dest(f), f.flag)}"
        result.settings[f.key] = Setting(f.key, value, source, lambda *_, s=source: s, False)
    result.config_file = parsed.config_file
    if parsed.validate is not None:
        result.validate = parsed.validate
    keys = {_dest(f): f.key for f in FIELDS}
    for dest, flag, first, again in parsed.twice:
        msg = f"given twice ({flag} {first}, then {flag} {again}); it takes one value"
        hint = "keep the one you mean; boxnetd does not pick one for you"
        problem = ConfigProblem(keys.get(dest), f"flag {flag}", str(again), msg, hint)
        result.problems.append(problem)
    result.problems += _unknown(parser, unknown)
    return result


def _unknown(parser: argparse.ArgumentParser, unknown: list[str]) -> list[ConfigProblem]:
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    problems = []
    skip_next = False
    for i, arg in enumerate(unknown):
        if skip_next:
            skip_next = False
            continue
        if arg.startswith("-") and arg != "-":
            name = arg.split("=", 1)[0]
            # `--fixed-cidrr 10.0.0.0/16`: the next word is this flag's value, not another mistake.
            nxt = unknown[i + 1] if i + 1 < len(unknown) else None
            skip_next = "=" not in arg and nxt is not None and not nxt.startswith("-")
            guess = did_you_mean(name if name.startswith("--") else "-" + name, options)
            hint = f"did you mean {guess}?" if guess else "see boxnetd --help"
            problems.append(ConfigProblem(None, COMMAND_LINE, arg, f"unknown flag {name}", hint))
        else:
            msg = f"unexpected argument {arg!r}: boxnetd takes only flags"
            problems.append(ConfigProblem(None, COMMAND_LINE, arg, msg, "see boxnetd --help"))
    return problems
