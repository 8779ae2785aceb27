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
