"""Watching the daemon and containers: events, top, stats, diff."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    from boxnet.cli.main import verb

    p = verb(sub, "events")
    p.add_argument("--since", help="events since this time (10m, RFC 3339, UNIX time)")
    p.add_argument("--until", help="stream until this time (10m, RFC 3339, UNIX time)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="type, container, network, event, image, label")  # fmt: skip
    p.add_argument("--format", help='"json" for one JSON object a line')
    p.set_defaults(func=cmd_events)
    p = verb(sub, "top")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS OPTIONS")
    p.set_defaults(func=cmd_top)
    p = verb(sub, "stats")
    p.add_argument("--no-stream", action="store_true", help="one reading, then exit")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_stats)


def cmd_events(ctx: Any, args: argparse.Namespace) -> int:
    import json

    from boxnet.parsing.timestamps import api_timestamp

    query: dict[str, Any] = {}
    for option in ("since", "until"):
        if getattr(args, option) is not None:
            query[option] = api_timestamp(getattr(args, option), f"--{option}")
    if args.filter:
        query["filters"] = json.dumps(cli_filters(args.filter))
    pending = b""
    for chunk in ctx.client.stream("GET", "/events", query):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                print(format_event(json.loads(line), args.format), flush=True)
    return 0


def cli_filters(items: list[str]) -> dict[str, dict[str, bool]]:
    """`--filter KEY=VALUE` flags -> the CLI's JSON encoding of filters."""
    from boxnet.errors import BoxnetError

    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BoxnetError(
                f"bad format of filter (expected name=value): {item}", "e.g. type=container"
            )
        out.setdefault(key.strip().lower(), {})[value] = True
    return out


def format_event(event: dict[str, Any], fmt: str | None) -> str:
    """docker events' line: `TIME TYPE ACTION ID (attr=value, ...)`."""
    import json
    from datetime import UTC, datetime

    if fmt == "json" or fmt == "{{json .}}":
        return json.dumps(event)
    nanos = int(event.get("timeNano") or 0)
    when = datetime.fromtimestamp(nanos // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    actor = event.get("Actor") or {}
    attrs = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
    return (
        f"{when}.{nanos % 10**9:09d}Z {event.get('Type')} {event.get('Action')}"
        f" {actor.get('ID', '')} ({attrs})"
    )


def _path(name: str, suffix: str = "") -> str:
    from boxnet.cli.client import quote

    return f"/containers/{quote(name)}{suffix}"


def cmd_top(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli import render

    query = {"ps_args": " ".join(args.ps_args)} if args.ps_args else None
    out = ctx.client.call("GET", _path(args.container, "/top"), None, query)
    print(render.table(out["Titles"], out["Processes"]))
    return 0


STATS_HEADERS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "PIDS")


def cmd_stats(ctx: Any, args: argparse.Namespace) -> int:
    """One reading of each container (`--no-stream`); without it, a new table every second."""
    import time

    from boxnet.cli import render

    while True:
        rows = []
        for name in args.containers:
            doc = ctx.client.call("GET", _path(name, "/stats"), None, {"stream": 0})
            rows.append(stats_row(doc, args.no_trunc))
        print(render.table(STATS_HEADERS, rows), flush=True)
        if args.no_stream:
            return 0
        time.sleep(1)


def stats_row(doc: dict[str, Any], no_trunc: bool = False) -> list[str]:
    """docker stats' columns, computed as the docker CLI does from one stats document."""
    from boxnet.cli import render

    cpu, pre = doc.get("cpu_stats") or {}, doc.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    )
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    percent = 0.0
    if cpu_delta > 0 and system_delta > 0:
        percent = cpu_delta / system_delta * (cpu.get("online_cpus") or 1) * 100
    memory = doc.get("memory_stats") or {}
    used, limit = memory.get("usage", 0), memory.get("limit", 0)
    nets = (doc.get("networks") or {}).values()
    rx, tx = sum(n.get("rx_bytes", 0) for n in nets), sum(n.get("tx_bytes", 0) for n in nets)
    return [
        render.short_id(doc.get("id", ""), no_trunc),
        str(doc.get("name", "")).lstrip("/"),
        f"{percent:.2f}%",
        f"{render.human_size(used)} / {render.human_size(limit)}",
        f"{100 * used / limit:.2f}%" if limit else "0.00%",
        f"{render.human_size(rx)} / {render.human_size(tx)}",
        str((doc.get("pids_stats") or {}).get("current", 0)),
    ]
