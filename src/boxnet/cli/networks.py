"""`boxnet network create|ls|inspect|rm|prune|connect|disconnect`, with Docker's flags."""

from __future__ import annotations

import sys

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    import argparse
    from typing import Any

LS_HEADERS = ("NETWORK ID", "NAME", "DRIVER", "SCOPE")
# What `network create NAME` parses to besides the name (cli/quick.py builds it without
# argparse; tests/unit/test_cli_quick.py checks it against the parser below).
CREATE_DEFAULTS: dict[str, Any] = {
    "driver": "bridge",
    "subnet": [],
    "gateway": [],
    "ip_range": [],
    "aux_address": [],
    "internal": False,
    "attachable": False,
    "ipv6": False,
    "ipv4": None,
    "opt": [],
    "label": [],
}


def register(sub: Any) -> None:
    from boxnet.cli.main import group_parser

    _, net = group_parser(sub, "network")
    p = net.add_parser("create", help="create a network (prints its id)", allow_abbrev=False)
    add = p.add_argument
    add("-d", "--driver", default="bridge", help="bridge (default) or macvlan")
    add("--subnet", action="append", default=[], metavar="CIDR", help="subnet, e.g. 172.20.0.0/16")
    add("--gateway", action="append", default=[], metavar="IP", help="gateway of a subnet")
    add("--ip-range", action="append", default=[], metavar="CIDR", help="allocate from this range")
    add("--aux-address", action="append", default=[], metavar="NAME=IP",
        help="address the allocator must not hand out")  # fmt: skip
    add("--internal", action="store_true", help="no access to or from outside")
    add("--attachable", action="store_true", help="containers may connect (overlay)")
    add("--ipv6", action="store_true", help="enable IPv6 (dual stack)")
    add("--ipv4", nargs="?", const="true", default=None, metavar="BOOL",
        help="--ipv4=false with --ipv6: an IPv6-only network")  # fmt: skip
    add("-o", "--opt", action="append", default=[], metavar="KEY=VALUE", help="driver option")
    add("--label", action="append", default=[], metavar="KEY=VALUE", help="metadata")
    add("name", metavar="NETWORK")
    p.set_defaults(func=cmd_create)
    p = net.add_parser("ls", aliases=["list"], help="list networks", allow_abbrev=False)
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("--format", help='"table", "json" or a Go template')
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="name, id, driver, label, scope, type, dangling")  # fmt: skip
    p.set_defaults(func=cmd_ls)
    p = net.add_parser("inspect", help="low-level JSON of networks", allow_abbrev=False)
    p.add_argument("-f", "--format", help='"json" or a Go template, e.g. {{.IPAM.Config}}')
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.set_defaults(func=cmd_inspect)
    p = net.add_parser("rm", aliases=["remove"], help="remove networks", allow_abbrev=False)
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.set_defaults(func=cmd_rm)
    p = net.add_parser("prune", help="remove networks no container uses", allow_abbrev=False)
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_prune)
    p = net.add_parser("connect", help="connect a container to a network", allow_abbrev=False)
    p.add_argument("--ip", help="IPv4 address")
    p.add_argument("--ip6", help="IPv6 address")
    p.add_argument("--alias", action="append", default=[], help="DNS alias on this network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_connect)
    p = net.add_parser("disconnect", help="disconnect a container", allow_abbrev=False)
    p.add_argument("-f", "--force", action="store_true", help="even if the container is gone")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_disconnect)


def key_values(values: list[str], flag: str) -> dict[str, str]:
    """`KEY=VALUE` (or `KEY`, meaning an empty value, as Docker's map options allow)."""
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise InvalidArgument(f'invalid {flag} "{value}": empty key', f"e.g. {flag} key=value")
        out[key] = val
    return out


def _network(text: str, flag: str) -> Any:
    from ipaddress import ip_network

    try:
        return ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(
            f'invalid {flag} "{text}": not a CIDR', "e.g. 172.20.0.0/16"
        ) from None


def _address(text: str, flag: str) -> Any:
    from ipaddress import ip_address

    try:
        return ip_address(text)
    except ValueError:
        raise InvalidArgument(f'invalid {flag} "{text}": not an IP address') from None


def ipam_config(
    subnets: list[str], ranges: list[str], gateways: list[str], aux: dict[str, str]
) -> list[dict[str, Any]]:
    """Docker's consolidateIpam: attach each range, gateway and aux address to its subnet."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways) or (aux and not subnets):
        raise InvalidArgument(
            "every ip-range, gateway or aux-address must have a corresponding subnet",
            "add --subnet CIDR containing them",
        )
    nets = [_network(s, "--subnet") for s in subnets]
    for i, net in enumerate(nets):
        for other in nets[:i]:
            if net.version == other.version and net.overlaps(other):
                raise InvalidArgument(
                    f"multiple overlapping subnet configuration is not supported: {subnets[i]}"
                )
    configs: list[dict[str, Any]] = [{"Subnet": s} for s in subnets]

    def place(value: Any, text: str, field: str, what: str) -> list[int]:
        owners = [
            i for i, net in enumerate(nets)
            if net.version == value.version and (
                value.subnet_of(net) if hasattr(value, "subnet_of") else value in net
            )
        ]  # fmt: skip
        if not owners:
            raise InvalidArgument(f"no matching subnet for {what} {text}")
        for i in owners:
            if field != "AuxiliaryAddresses" and field in configs[i]:
                raise InvalidArgument(
                    f"cannot configure multiple {what}s ({text}, {configs[i][field]}) "
                    f"on the same subnet ({subnets[i]})"
                )
        return owners

    for text in ranges:
        for i in place(_network(text, "--ip-range"), text, "IPRange", "range"):
            configs[i]["IPRange"] = text
    for text in gateways:
        for i in place(_address(text, "--gateway"), text, "Gateway", "gateway"):
            configs[i]["Gateway"] = text
    for name, text in aux.items():
        for i in place(_address(text, "--aux-address"), text, "AuxiliaryAddresses", "aux-address"):
            configs[i].setdefault("AuxiliaryAddresses", {})[name] = text
    return configs


def build_create(args: argparse.Namespace) -> dict[str, Any]:
    from boxnet.parsing.netname import validate_network_name

    aux = key_values(args.aux_address, "--aux-address")
    for name, value in aux.items():
        if not value:
            raise InvalidArgument(f'invalid --aux-address "{name}": no IP', "e.g. host1=172.20.0.5")
    body: dict[str, Any] = {
        "Name": validate_network_name(args.name),
        "Driver": args.driver,
        "Internal": args.internal,
        "Attachable": args.attachable,
        "EnableIPv6": args.ipv6,
        "IPAM": {
            "Driver": "default",
            "Config": ipam_config(args.subnet, args.ip_range, args.gateway, aux),
        },
        "Options": key_values(args.opt, "--opt"),
        "Labels": key_values(args.label, "--label"),
    }
    if args.ipv4 is not None:
        if args.ipv4.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid --ipv4 value {args.ipv4!r}", hint="--ipv4=false")
        body["EnableIPv4"] = args.ipv4.lower() in ("true", "1")
    return body


def build_connect(args: argparse.Namespace) -> dict[str, Any]:
    from boxnet.parsing.names import validate_dns_name

    endpoint: dict[str, Any] = {}
    from boxnet.cli.run import ipam_addresses

    ipam = ipam_addresses(args.ip, args.ip6)
    if ipam:
        endpoint["IPAMConfig"] = ipam
    if args.alias:
        endpoint["Aliases"] = [validate_dns_name(a, kind="network alias") for a in args.alias]
    return {"Container": args.container, "EndpointConfig": endpoint}


def _path(name: str, suffix: str = "") -> str:
    from boxnet.cli.client import quote

    return f"/networks/{quote(name)}{suffix}"


def cmd_create(ctx: Any, args: argparse.Namespace) -> int:
    result = ctx.client.call("POST", "/networks/create", build_create(args))
    if result.get("Warning"):
        sys.stderr.write(f"WARNING: {result['Warning']}\n")
    print(result["Id"])
    return 0


def ls_table(networks: list[dict[str, Any]], no_trunc: bool = False) -> str:
    from boxnet.cli.render import short_id, table

    rows = [
        [short_id(str(n.get("Id", "")), no_trunc), str(n.get("Name", "")),
         str(n.get("Driver", "")), str(n.get("Scope", ""))]
        for n in networks
    ]  # fmt: skip
    return table(LS_HEADERS, rows)


def ls_fields(n: dict[str, Any], no_trunc: bool = False) -> dict[str, str]:
    """The fields of Docker's network formatter."""
    from boxnet.cli.render import created_at, short_id

    labels = n.get("Labels") or {}
    return {
        "ID": short_id(str(n.get("Id", "")), no_trunc),
        "Name": str(n.get("Name", "")),
        "Driver": str(n.get("Driver", "")),
        "Scope": str(n.get("Scope", "")),
        "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
        "Internal": str(bool(n.get("Internal"))).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "CreatedAt": created_at(n.get("Created")),
    }


def cmd_ls(ctx: Any, args: argparse.Namespace) -> int:
    import json

    from boxnet.cli.render import print_formatted, print_json_lines, short_id
    from boxnet.parsing.filters import from_cli

    query = {"filters": json.dumps(from_cli(args.filter))} if args.filter else None
    listed = ctx.client.call("GET", "/networks", query=query)
    networks = sorted(listed, key=lambda n: str(n.get("Name", "")))
    if args.quiet:
        for n in networks:
            print(short_id(str(n.get("Id", "")), args.no_trunc))
        return 0
    if args.format == "json":  # Docker's `{{json .}}`: the display fields, one object a line
        print_json_lines(dict(sorted(ls_fields(n, args.no_trunc).items())) for n in networks)
        return 0
    print_formatted(
        args.format,
        networks,
        lambda ns: ls_table(ns, args.no_trunc),
        lambda n: {**n, "ID": short_id(str(n.get("Id", "")), args.no_trunc)},
    )
    return 0


def cmd_inspect(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.containers import inspect_many

    return inspect_many(ctx, args.names, args.format, "network")


def cmd_rm(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.containers import for_each

    return for_each(args.names, lambda n: ctx.client.request("DELETE", _path(n)))


def cmd_prune(ctx: Any, args: argparse.Namespace) -> int:
    if not args.force:
        sys.stdout.write(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    deleted = ctx.client.call("POST", "/networks/prune").get("NetworksDeleted") or []
    if deleted:
        print("Deleted Networks:\n" + "\n".join(deleted))
    return 0


def cmd_connect(ctx: Any, args: argparse.Namespace) -> int:
    ctx.client.request("POST", _path(args.network, "/connect"), build_connect(args))
    return 0


def cmd_disconnect(ctx: Any, args: argparse.Namespace) -> int:
    body = {"Container": args.container, "Force": args.force}
    ctx.client.request("POST", _path(args.network, "/disconnect"), body)
    return 0
