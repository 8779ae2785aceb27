"""The options of `boxnet run` and `create`, declared once: argparse is built from this table
(cli/run.py) and so is the quick parser (cli/quick.py) that reads the common shapes without
importing argparse (~8 ms of a `run -d`'s ~20 ms in the CLI, issue #20).

`quick_parse` takes only what it can read exactly as argparse would: options spelled out in
full (`-p 80`, `--name web`, `--name=web`), values not starting with '-', then IMAGE and the
command. Anything else (clustered short flags `-it`, attached values `-p80`, abbreviations
`--netw`, `--`, `--help`, a missing image) returns None and argparse reads it, errors included.
tests/unit/test_cli_quick.py checks the two give the same namespace.
"""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing costs ~2 ms; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

FLAG, VALUE, APPEND, INT = "flag", "value", "append", "int"


class Opt:
    """One option: its spellings, where it lands, how it reads its value."""

    __slots__ = ("default", "dest", "help", "kind", "metavar", "names")

    def __init__(
        self,
        names: tuple[str, ...],
        kind: str,
        help: str,
        *,
        dest: str = "",
        metavar: str | None = None,
        default: Any = None,
    ) -> None:
        self.names = names
        self.kind = kind
        self.help = help
        # argparse's rule: the first long spelling, without dashes, '-' as '_'
        first_long = next(n for n in names if n.startswith("--"))
        self.dest = dest or first_long[2:].replace("-", "_")
        self.metavar = metavar
        self.default = default

    def initial(self) -> Any:
        if self.kind == FLAG:
            return False
        if self.kind == APPEND:
            return []
        return self.default


# -h is --hostname here (as in Docker), so help is only --help (added by run.py).
OPTIONS: tuple[Opt, ...] = (
    Opt(("-d", "--detach"), FLAG, "run in the background, print the id"),
    Opt(("-i", "--interactive"), FLAG, "keep STDIN attached"),
    Opt(("-t", "--tty"), FLAG, "allocate a pseudo-TTY"),
    Opt(("--rm",), FLAG, "remove the container when it exits"),
    Opt(("--name",), VALUE, "container name"),
    Opt(("--entrypoint",), VALUE, 'the image\'s ENTRYPOINT instead ("" = none)', metavar="CMD"),
    Opt(("-h", "--hostname"), VALUE, "container host name"),
    Opt(("-e", "--env"), APPEND, "set a variable", metavar="KEY[=VALUE]"),
    Opt(("--net", "--network"), APPEND,
        "bridge (default), none, host, container:NAME|ID or a network name",
        dest="network", metavar="MODE"),
    Opt(("--ip",), VALUE, "IPv4 address on the network (user-defined networks)"),
    Opt(("--ip6",), VALUE, "IPv6 address on the network (user-defined IPv6 networks)"),
    Opt(("--mac-address",), VALUE, "MAC address, e.g. 02:42:ac:11:00:02"),
    Opt(("--network-alias",), APPEND, "DNS alias", metavar="ALIAS"),
    Opt(("--dns",), APPEND, "DNS server", metavar="IP"),
    Opt(("--dns-search",), APPEND, "DNS search domain", metavar="DOMAIN"),
    Opt(("--dns-option", "--dns-opt"), APPEND, "resolv.conf option, e.g. ndots:2",
        metavar="OPT"),
    Opt(("--add-host",), APPEND, "add to /etc/hosts", metavar="HOST:IP"),
    Opt(("-p", "--publish"), APPEND, "publish a port: [IP:][HOSTPORT:]CPORT[/PROTO]",
        metavar="SPEC"),
    Opt(("-P", "--publish-all"), FLAG, "publish all exposed ports"),
    Opt(("--expose",), APPEND, "expose a port", metavar="PORT[/PROTO]"),
    Opt(("--log-driver",), VALUE, "json-file (the only one: every log is one)",
        metavar="DRIVER"),
    Opt(("--log-opt",), APPEND, "log option: max-size=10m (default), max-file=3 (default)",
        metavar="KEY=VALUE"),
    Opt(("-v", "--volume"), APPEND, "bind mount an absolute host path", metavar="HOST:CTR[:ro]"),
    Opt(("--mount",), APPEND, "bind mount (type=bind only)",
        metavar="type=bind,source=..,target=.."),
    Opt(("-u", "--user"), VALUE, "user (or NAME[:GROUP]) to run as", metavar="UID[:GID]"),
    Opt(("-w", "--workdir"), VALUE, "working directory (created if missing)", metavar="DIR"),
    Opt(("--read-only",), FLAG, "mount the root file system read-only"),
    Opt(("--domainname",), VALUE, "container NIS domain name", metavar="NAME"),
    Opt(("-l", "--label"), APPEND, "set a label", metavar="KEY=VALUE"),
    Opt(("--restart",), VALUE, "no, on-failure[:N], always, unless-stopped", metavar="POLICY",
        default="no"),
    Opt(("--link",), APPEND, "add a link to another container", metavar="NAME[:ALIAS]"),
    Opt(("--tmpfs",), APPEND, "mount a tmpfs, e.g. /run:rw,size=64m", metavar="PATH[:OPTIONS]"),
    Opt(("--stop-signal",), VALUE, "signal that stops the container (SIGTERM)",
        metavar="SIGNAL"),
    Opt(("--stop-timeout",), INT, "seconds before SIGKILL (10)", metavar="SECONDS"),
)  # fmt: skip

BY_NAME: dict[str, Opt] = {name: opt for opt in OPTIONS for name in opt.names}


def quick_parse(words: list[str]) -> dict[str, Any] | None:
    """The namespace argparse would give `run WORDS` (image and command included), or None when
    the words take a shape only argparse reads (see the module's doc)."""
    if "--" in words:
        return None
    fields = {opt.dest: opt.initial() for opt in OPTIONS}
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        name, equals, value = words[i].partition("=")
        if not words[i].startswith("--"):
            name, equals = words[i], ""
        opt = BY_NAME.get(name)
        if opt is None:
            return None
        if opt.kind == FLAG:
            if equals:
                return None
            fields[opt.dest] = True
            i += 1
            continue
        if not equals:
            if i + 1 >= len(words) or words[i + 1].startswith("-"):
                return None
            value = words[i + 1]
        i += 1 if equals else 2
        if opt.kind == INT:
            if not (value.isascii() and value.isdigit()):
                return None
            fields[opt.dest] = int(value)
        elif opt.kind == APPEND:
            fields[opt.dest].append(value)
        else:
            fields[opt.dest] = value
    if i >= len(words):
        return None  # no IMAGE: argparse says so
    fields["image"] = words[i]
    fields["command"] = words[i + 1 :]
    return fields
