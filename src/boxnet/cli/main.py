"""`boxnet` entry point: global flags, the command table, and the one place errors become output.

Every command module exposes `register(subparsers)`, which adds its verbs with
`set_defaults(func=handler)`; a handler takes (Context, Namespace) and returns the exit code.
Command modules import only the standard library at the top; anything heavier (JSON, parsing,
ipaddress, termios) is imported inside the handler that needs it, so `boxnet version` and
`boxnet --help` start fast.

Exit codes, as Docker's: 0 success; 1 an error (`Error: ...` on stderr); 125 a usage error or,
for run/create, any error of boxnet itself; 126/127/N from the container (run, exec, start -a);
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from boxnet import API_VERSION, __version__
from boxnet.cli.context import Context, run

__all__ = ["Context", "build_parser", "main"]

TYPE_CHECKING = False  # importing typing costs ~2 ms; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any, NoReturn

USAGE_ERROR = 125  # Docker's exit code for bad flags and arguments

# Every verb: (module that registers it, one-line summary). main imports and builds the parser of
# the invoked verb's module only: building all ~150 options costs ~8 ms of start-up.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "Create and start a container"),
    "create": ("run", "Create a container (prints its id)"),
    "exec": ("run", "Run a command in a running container"),
    "start": ("containers", "Start stopped containers"),
    "stop": ("containers", "Stop running containers"),
    "restart": ("containers", "Restart containers"),
    "kill": ("containers", "Send a signal to running containers"),
    "rm": ("containers", "Remove containers"),
    "ps": ("containers", "List containers"),
    "logs": ("containers", "Print a container's output"),
    "inspect": ("containers", "Show the low-level JSON of containers, images or networks"),
    "port": ("containers", "List a container's published ports"),
    "wait": ("containers", "Wait for containers to stop, print their exit codes"),
    "events": ("observe", "Stream the daemon's events"),
    "cp": ("files", "Copy files between a container and the local file system"),
    "diff": ("files", "List the files a container changed, added or deleted"),
    "rename": ("alter", "Rename a container"),
    "update": ("alter", "Change containers' restart policy (--restart)"),
    "pause": ("alter", "Suspend every process of containers (SIGSTOP)"),
    "unpause": ("alter", "Resume the processes of paused containers"),
    "container": ("alter", "Container housekeeping (prune)"),
    "df": ("alter", "Show disk usage of images and containers"),
    "top": ("observe", "Show a container's processes"),
    "stats": ("observe", "Show containers' CPU, memory, network and process counts"),
    "network": ("networks", "Manage networks"),
    "pipework": ("lan", "Attach a container to a host bridge or NIC (pipework's syntax)"),
    "hostbridge": ("lan", "Move a host NIC onto a bridge containers can join"),
    "images": ("images", "List images"),
    "image": ("images", "Manage images (ls, inspect, rm, prune, pull, tag, save, load, history)"),
    "pull": ("images", "Pull an image from a registry"),
    "tag": ("images", "Give an image another name (REPOSITORY[:TAG])"),
    "rmi": ("images", "Remove images (untag; delete when no tag is left)"),
    "save": ("images", "Write images to a tarball (docker save format)"),
    "load": ("images", "Load images from a docker save or OCI layout tarball"),
    "history": ("images", "Show the history of an image"),
    "import": ("images", "Add an image from a root file system tarball or directory"),
    "version": ("system", "Show the client and daemon versions"),
    "info": ("system", "Show daemon-wide information"),
    "system": ("system", "Manage boxnetd (gc, reload)"),
    "topology": ("topology", "Show the live network topology (page address, or svg/dot/json)"),
    "explain": ("topology", "Tell whether traffic from SRC to DST passes, and why"),
}
ALL = "*"  # build_parser(ALL): every verb (tests, completeness checks)


def _terminal_width() -> int:
    # argparse's default formatter imports shutil (+ bz2, lzma: ~2 ms) to ask this, per option.
    try:
        return int(os.environ.get("COLUMNS") or os.get_terminal_size(2).columns) - 2
    except (OSError, ValueError):
        return 78


class Formatter(argparse.HelpFormatter):
    width = 0

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24) -> None:
        if not Formatter.width:
            Formatter.width = _terminal_width()
        super().__init__(prog, indent_increment, max_help_position, Formatter.width)


class Parser(argparse.ArgumentParser):
    """argparse with Docker-style usage errors (`Error: ...`, exit 125), no abbreviations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--ne` must not mean `--net`
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    help_prog = ""  # the top-level parser reports unknown options: point at the verb's help

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"Error: {message}\nSee '{self.help_prog or self.prog} --help'.\n")
        raise SystemExit(USAGE_ERROR)


def _show_help(parser: argparse.ArgumentParser) -> Any:
    def handler(ctx: Context, args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return handler


def _epilog() -> str:
    lines = ["commands:"]
    lines += [f"  {name:<12}{summary}" for name, (_, summary) in COMMANDS.items()]
    lines.append("\nRun 'boxnet COMMAND --help' for more information on a command.")
    return "\n".join(lines)


def find_command(argv: list[str]) -> str | None:
    """The verb: the first word after the global options (which come before it, as in Docker)."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in ("-H", "--host"):
            index += 2
        elif arg.startswith("-"):
            index += 1
        else:
            return arg
    return None


def build_parser(command: str | None = ALL) -> Parser:
    """The top-level parser with the verbs of `command`'s module (all of them for ALL)."""
    parser = Parser(
        prog="boxnet",
        description="Docker-style container networking: the boxnetd client.",
        epilog=_epilog(),
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
            prog, width=Formatter.width or _terminal_width()
        ),
    )
    parser.add_argument(
        "-H",
        "--host",
        metavar="SOCKET",
        help="daemon socket (default: $BOXNET_HOST or unix:///run/boxnet.sock)",
    )
    parser.add_argument(
        "-D", "--debug", action="store_true", help="show Python tracebacks on errors"
    )
    parser.add_argument(
        "-v",
        "--version",
        action="version",
        version=f"boxnet version {__version__}, API {API_VERSION}",
        help="print the client version and exit",
    )
    parser.set_defaults(func=_show_help(parser), error_code=1)
    if command is None:
        return parser  # `boxnet`, `boxnet --help`: the epilog lists the verbs
    if command != ALL and command not in COMMANDS:
        import difflib  # only on this error path

        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        parser.error(f"'{command}' is not a boxnet command. {hint}".rstrip())
    if command != ALL:
        parser.help_prog = f"boxnet {command}"
    sub = parser.add_subparsers(metavar="COMMAND", help=argparse.SUPPRESS, parser_class=Parser)
    modules = {m for m, _ in COMMANDS.values()} if command == ALL else {COMMANDS[command][0]}
    import importlib

    for name in sorted(modules):
        importlib.import_module(f"boxnet.cli.{name}").register(sub)
    return parser


def verb(sub: Any, name: str, **kwargs: Any) -> Parser:
    """Add a top-level verb; its help text is its summary in COMMANDS."""
    summary = COMMANDS[name][1]
    parser: Parser = sub.add_parser(name, help=summary, description=summary, **kwargs)
    return parser


def group_parser(sub: Any, name: str) -> tuple[Parser, Any]:
    """A verb with subcommands (`network`, `system`, `hostbridge`); bare, it prints its help."""
    parser = verb(sub, name)
    parser.set_defaults(func=_show_help(parser))
    return parser, parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(find_command(argv)).parse_args(argv)
    return run(args.func, Context(args.host, args.debug), args)
