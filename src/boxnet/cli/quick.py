"""`boxnet`'s entry point: the few verbs a script repeats in a loop, without argparse.

argparse (with re, gettext and locale behind it) is ~8 ms of a ~25 ms start-up, more than the
daemon's share of `rm -f` or `network rm` (issue #20). These shapes are recognised here and
handed to the very handlers main.py would call, with the namespace argparse would have built
(tests/unit/test_cli_quick.py compares the two):

    [-H SOCKET | --host SOCKET | --host=SOCKET | -D | --debug]... VERB
    rm [-f | --force]... CONTAINER...
    network rm NETWORK...
    network create NETWORK
    run|create [OPTION VALUE | --OPTION=VALUE | FLAG]... IMAGE [COMMAND...]   (cli/runopts.py)

Anything else (another verb or flag, `--help`, a name starting with "-") goes to main.main,
unchanged. Both paths call handlers through context.run, where errors become output.
"""

from __future__ import annotations

import sys

from boxnet.cli.context import Context, run

TYPE_CHECKING = False  # importing typing costs ~2 ms; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Args:
    """The attributes argparse's Namespace would carry for a recognised shape."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def _globals(argv: list[str]) -> tuple[str | None, bool, list[str]] | None:
    """(host, debug, the rest from the verb on), or None if a global option is not simple."""
    host, debug, i = None, False, 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in ("-H", "--host") and i + 1 < len(argv):
            host, i = argv[i + 1], i + 2
        elif arg.startswith("--host="):
            host, i = arg.partition("=")[2], i + 1
        elif arg in ("-D", "--debug"):
            debug, i = True, i + 1
        else:
            return None
    return host, debug, argv[i:]


def _names(words: list[str]) -> list[str] | None:
    return words if words and not any(w.startswith("-") for w in words) else None


def recognise(argv: list[str]) -> tuple[Callable[[Any, Any], int], Args, Context] | None:
    """The handler, its arguments and context for a quick shape; None for anything else."""
    parsed = _globals(argv)
    if parsed is None:
        return None
    host, debug, rest = parsed
    ctx = Context(host, debug)
    if rest[:1] == ["rm"]:
        words = rest[1:]
        force = False
        while words and words[0] in ("-f", "--force"):
            force, words = True, words[1:]
        names = _names(words)
        if names is None:
            return None
        from boxnet.cli import containers

        return containers.cmd_rm, Args(force=force, containers=names, error_code=1), ctx
    if rest[:2] == ["network", "rm"] and (names := _names(rest[2:])) is not None:
        from boxnet.cli import networks

        return networks.cmd_rm, Args(names=names, error_code=1), ctx
    if rest[:2] == ["network", "create"] and _names(rest[2:]) and len(rest) == 3:
        from boxnet.cli import networks

        fields = {**networks.CREATE_DEFAULTS, "name": rest[2], "error_code": 1}
        return networks.cmd_create, Args(**fields), ctx
    if rest[:1] in (["run"], ["create"]):
        from boxnet.cli import run, runopts

        options = runopts.quick_parse(rest[1:])
        if options is None:
            return None
        func = run.cmd_run if rest[0] == "run" else run.cmd_create
        return func, Args(**options, error_code=125), ctx
    return None


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    quick = recognise(argv)
    if quick is None:
        from boxnet.cli.main import main as full

        return full(argv)
    func, args, ctx = quick
    return run(func, ctx, args)
