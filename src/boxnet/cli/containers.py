"""Container verbs other than run/create/exec: start, stop, restart, kill, rm, ps, logs,
inspect, port, wait.

Verbs taking several containers act on each, report each failure on stderr and exit 1 if any
failed, like Docker's.
"""

from __future__ import annotations

import sys

from boxnet.errors import BoxnetError, NotFound

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

PS_HEADERS = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")


def register(sub: Any) -> None:
    from boxnet.cli.main import verb

    p = verb(sub, "start")
    p.add_argument("-a", "--attach", action="store_true", help="attach stdout/stderr and wait")
    p.add_argument("-i", "--interactive", action="store_true", help="attach stdin")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_start)
    for name in ("stop", "restart"):
        p = verb(sub, name)
        p.add_argument("-t", "--time", "--timeout", dest="time", type=int, metavar="SECONDS",
                       help="seconds to wait before killing (default 10)")  # fmt: skip
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.set_defaults(func=cmd_stop, verb=name)
    p = verb(sub, "kill")
    p.add_argument("-s", "--signal", default="KILL", help="signal (default KILL)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_kill)
    p = verb(sub, "rm")
    p.add_argument("-f", "--force", action="store_true", help="kill and remove running ones")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_rm)
    p = verb(sub, "ps")
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("--format", help='"table", "json" or a Go template')
    p.add_argument("-n", "--last", type=int, default=-1, metavar="N",
                   help="the N last created containers (all states)")  # fmt: skip
    p.add_argument("-l", "--latest", action="store_true", help="the last created container")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. status=exited, label=tier=front, name=web, network=NET")  # fmt: skip
    p.set_defaults(func=cmd_ps)
    p = verb(sub, "logs")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the container stops")
    p.add_argument("-n", "--tail", default="all", help='lines from the end (default "all")')
    p.add_argument("--since", help="only from this time on: 10m, 1h30m, RFC 3339, UNIX time")
    p.add_argument("--until", help="only up to this time: 10m, 1h30m, RFC 3339, UNIX time")
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_logs)
    p = verb(sub, "inspect")
    p.add_argument("-f", "--format", help='"json" or a Go template, e.g. {{.State.Pid}}')
    p.add_argument(
        "--type", choices=("container", "image", "network"), help="only look for this type"
    )
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p.set_defaults(func=cmd_inspect)
    p = verb(sub, "port")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]")
    p.set_defaults(func=cmd_port)
    p = verb(sub, "wait")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_wait)


def _path(name: str, suffix: str = "") -> str:
    from boxnet.cli.client import quote

    return f"/containers/{quote(name)}{suffix}"


def for_each(names: list[str], action: Callable[[str], Any], echo: bool = True) -> int:
    """Apply action to each name; print the name on success, `Error: ...` on failure."""
    failed = False
    for name in names:
        try:
            action(name)
        except BoxnetError as err:
            sys.stderr.write(err.render() + "\n")
            failed = True
            continue
        if echo:
            print(name)
    return 1 if failed else 0


def cmd_start(ctx: Any, args: argparse.Namespace) -> int:
    if not (args.attach or args.interactive):
        return for_each(args.containers, lambda n: ctx.client.request("POST", _path(n, "/start")))
    if len(args.containers) > 1:
        raise BoxnetError("you cannot start and attach multiple containers at once")
    from boxnet.cli import attach
    from boxnet.cli.run import start_error

    info = ctx.client.call("GET", _path(args.containers[0], "/json"))
    config = info.get("Config") or {}
    interactive = bool(args.interactive and config.get("OpenStdin"))
    try:
        return attach.run_container(
            ctx.client, info["Id"], tty=bool(config.get("Tty")), interactive=interactive
        )
    except Exception as err:
        raise start_error(err, default=1) from None


def cmd_stop(ctx: Any, args: argparse.Namespace) -> int:
    query = {"t": args.time} if args.time is not None else None
    return for_each(
        args.containers,
        lambda n: ctx.client.request("POST", _path(n, f"/{args.verb}"), None, query),
    )


def cmd_kill(ctx: Any, args: argparse.Namespace) -> int:
    query = {"signal": args.signal}
    return for_each(
        args.containers, lambda n: ctx.client.request("POST", _path(n, "/kill"), None, query)
    )


def cmd_rm(ctx: Any, args: argparse.Namespace) -> int:
    query = {"force": 1} if args.force else None
    return for_each(args.containers, lambda n: ctx.client.request("DELETE", _path(n), None, query))


def cmd_wait(ctx: Any, args: argparse.Namespace) -> int:
    def wait(name: str) -> None:
        print(ctx.client.call("POST", _path(name, "/wait")).get("StatusCode"))

    return for_each(args.containers, wait, echo=False)


def ps_fields(
    c: dict[str, Any], no_trunc: bool = False, now: float | None = None
) -> dict[str, str]:
    """The fields of Docker's ps formatter (`--format '{{.ID}} {{.Names}}'`) and table."""
    from boxnet.cli import render

    command = str(c.get("Command") or "")
    networks = ((c.get("NetworkSettings") or {}).get("Networks")) or {}
    return {
        "ID": render.short_id(str(c.get("Id", "")), no_trunc),
        "Image": str(c.get("Image", "")),
        "Command": render.go_quote(command if no_trunc else render.ellipsis(command, 20)),
        "RunningFor": render.ago(c.get("Created"), now),
        "Status": str(c.get("Status", "")),
        "Ports": render.display_ports(c.get("Ports") or []),
        "Names": ",".join(str(n).lstrip("/") for n in c.get("Names") or []),
        "State": str(c.get("State", "")),
        "Networks": ",".join(sorted(networks)),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((c.get("Labels") or {}).items())),
        "CreatedAt": render.created_at(c.get("Created")),
        "LocalVolumes": "0",
        "Mounts": ",".join(str(m.get("Source", "")) for m in c.get("Mounts") or []),
        "Size": "0B",
    }


def ps_table(
    containers: list[dict[str, Any]], no_trunc: bool = False, now: float | None = None
) -> str:
    from boxnet.cli import render

    keys = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")
    rows = [[ps_fields(c, no_trunc, now)[k] for k in keys] for c in containers]
    return render.table(PS_HEADERS, rows)


def cmd_ps(ctx: Any, args: argparse.Namespace) -> int:
    import json

    from boxnet.cli import render
    from boxnet.parsing.filters import from_cli

    query: dict[str, object] = {"all": 1 if args.all else None}
    limit = 1 if args.latest else args.last
    if limit > 0:
        query["limit"] = limit
    if args.filter:
        query["filters"] = json.dumps(from_cli(args.filter))
    containers = ctx.client.call("GET", "/containers/json", query=query)
    if args.quiet:
        for c in containers:
            print(render.short_id(str(c.get("Id", "")), args.no_trunc))
        return 0
    if args.format == "json":  # Docker's `{{json .}}`: the display fields, one object a line
        render.print_json_lines(
            dict(sorted(ps_fields(c, args.no_trunc).items())) for c in containers
        )
        return 0
    render.print_formatted(
        args.format,
        containers,
        lambda cs: ps_table(cs, args.no_trunc),
        # Templates see the API JSON with Docker's display fields on top ({{.Names}} = "web").
        lambda c: {**c, **ps_fields(c, args.no_trunc)},
    )
    return 0


def cmd_logs(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.parsing.timestamps import api_timestamp

    query: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": 1 if args.follow else None}
    for option in ("since", "until"):
        if getattr(args, option) is not None:
            query[option] = api_timestamp(getattr(args, option), f"--{option}")
    if args.timestamps:
        query["timestamps"] = 1
    if args.tail != "all":
        if not args.tail.isdigit():
            raise BoxnetError(f'invalid --tail "{args.tail}"', 'give a number of lines or "all"')
        query["tail"] = args.tail
    outputs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    headers: dict[str, str] = {}
    pending = b""
    for chunk in ctx.client.stream("GET", _path(args.container, "/logs"), query, headers):
        if "multiplexed" not in headers.get("content-type", ""):
            outputs[1].write(chunk)
            outputs[1].flush()  # -f: show each line as it arrives
            continue
        # Docker's framing: 8-byte header (stream, 0, 0, 0, big-endian length), then payload.
        pending += chunk
        while len(pending) >= 8:
            size = int.from_bytes(pending[4:8], "big")
            if len(pending) < 8 + size:
                break
            target = outputs.get(pending[0], outputs[1])
            target.write(pending[8 : 8 + size])
            target.flush()
            pending = pending[8 + size :]
    return 0


def lookup(ctx: Any, name: str, kind: str | None) -> Any:
    """Docker's `inspect` lookup: a container, else an image, else a network; NotFound names
    the object."""
    from boxnet.cli.client import ApiError, quote

    paths = {
        "container": _path(name, "/json"),
        "image": f"/images/{quote(name)}/json",
        "network": f"/networks/{quote(name)}",
    }
    for what, path in paths.items():
        if kind in (None, what):
            try:
                return ctx.client.call("GET", path)
            except ApiError as err:
                if err.status != 404:
                    raise
    raise NotFound(f"No such {kind or 'object'}: {name}")


def inspect_many(ctx: Any, names: list[str], fmt: str | None, kind: str | None) -> int:
    """Print what was found (array or one template line each); errors after; exit 1 if any."""
    from boxnet.cli import render

    found: list[Any] = []
    errors: list[NotFound] = []
    for name in names:
        try:
            found.append(lookup(ctx, name, kind))
        except NotFound as missing:
            errors.append(missing)
    if fmt in (None, "", "json"):
        render.print_json_array(found)
    else:
        render.print_template(fmt, found)
    for err in errors:
        sys.stderr.write(err.render() + "\n")
    return 1 if errors else 0


def cmd_inspect(ctx: Any, args: argparse.Namespace) -> int:
    return inspect_many(ctx, args.names, args.format, args.type)


def cmd_port(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.parsing.portfmt import format_port

    info = ctx.client.call("GET", _path(args.container, "/json"))
    ports = (info.get("NetworkSettings") or {}).get("Ports")
    sys.stdout.write(format_port(ports, args.port, args.container))
    return 0
