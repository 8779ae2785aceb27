"""`boxnet topology [--format svg|dot|json]`, `boxnet explain [--probe] SRC DST[:PORT][/PROTO]`."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

_FORMATS = {
    "svg": "/boxnet/topology.svg",
    "dot": "/boxnet/topology.dot",
    "json": "/boxnet/topology.json",
}


def register(sub: Any) -> None:
    from boxnet.cli.main import verb

    p = verb(sub, "topology")
    p.add_argument(
        "--format", choices=sorted(_FORMATS), help="write the drawing (or the model) to stdout"
    )
    p.set_defaults(func=cmd_topology)
    p = verb(sub, "explain")
    probe_help = "also send one real packet with kernel tracing on and show its path"
    p.add_argument("--probe", action="store_true", help=probe_help)
    p.add_argument("--format", help='"json" for JSON')
    p.add_argument(
        "-6", "--ipv6", action="store_true", help="over IPv6 (implied by an IPv6 address)"
    )
    p.add_argument("src", metavar="SRC", help="a container name, 'host' or an IP address")
    p.add_argument(
        "dst",
        metavar="DST[:PORT][/PROTO]",
        help="e.g. web, web:80/tcp, 192.0.2.1:53/udp, [2001:db8::2]:8080/tcp",
    )
    p.set_defaults(func=cmd_explain)


def cmd_topology(ctx: Any, args: argparse.Namespace) -> int:
    if args.format:
        body = ctx.client.request("GET", _FORMATS[args.format]).body
        sys.stdout.buffer.write(body)
        return 0
    ui = ctx.client.call("GET", "/boxnet/ui") or {}
    if ui.get("Address"):
        print(ui["Address"])
    else:
        print(f"{ctx.client.host} GET /boxnet/topology")
        print(
            "boxnetd serves the page on its socket only; start it with --ui 127.0.0.1:PORT to open"
            " it in a browser (or: boxnet topology --format svg > topology.svg)",
            file=sys.stderr,
        )
    return 0


def cmd_explain(ctx: Any, args: argparse.Namespace) -> int:
    query = {"src": args.src, "dst": args.dst, "probe": args.probe or None}
    if args.ipv6:
        query["family"] = "6"
    result = ctx.client.call("GET", "/boxnet/explain", query=query)
    if args.format == "json":
        import json

        print(json.dumps(result, indent=2))
    else:
        sys.stdout.write(explain_text(result))
    return 0 if result["Verdict"] == "allowed" else 1


def explain_text(r: dict[str, Any]) -> str:
    port = f":{r['Port']}" if r.get("Port") else ""
    out = [
        f"{r['Source']} ({r['SourceIP'] or '?'}) -> {r['Destination']} "
        f"({r['DestinationIP'] or '?'}){port}/{r['Protocol']}: {r['Verdict'].upper()}"
    ]
    for s in r["Steps"]:
        out.append(f"  {s['Stage']:<12} {s['Text']}")
        if s.get("Rule"):
            out.append(f"  {'':<12}   rule:   {s['Rule']}")
        if s.get("Reason"):
            out.append(f"  {'':<12}   reason: {s['Reason']}")
    for n in r.get("NAT") or []:
        out.append(f"  {'nat':<12} {n}")
    probe = r.get("Probe")
    if probe:
        out.append(f"probe (kernel trace): {probe.get('Summary', '')}")
        if probe.get("Note"):
            out.append(f"  note: {probe['Note']}")
        out += [f"  {line}" for line in probe.get("Trace", [])]
    return "\n".join(out) + "\n"
