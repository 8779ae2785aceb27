"""LAN attachment: `boxnet pipework` and `boxnet hostbridge` (SPEC §3).

Placeholders on the CLI side: they parse and check the arguments and send them to endpoints the
daemon is to serve (not yet in docs/API.md; shapes proposed here):

- `boxnet pipework HOSTIF [-i IFNAME] [-l HOSTIFNAME] CONTAINER IP/MASK[@GATEWAY]|dhcp
  [MAC|U:STRING]`
  -> POST /boxnet/pipework {"HostInterface", "ContainerInterface" (default eth1, as pipework),
     "HostInterfaceName" ("" = daemon's choice), "Container", "Address" ("IP/MASK" or the DHCP
     spec as typed, e.g. "dhcp" or "udhcpc:-x hostname:web"), "Gateway" ("" if none),
     "MacAddress" ("" = random, a MAC, or pipework's "U:STRING" for a MAC derived from STRING)}
     -> 200 {the recorded attachment}; `pipework --rm [-i IFNAME] HOSTIF CONTAINER`
     -> DELETE /boxnet/pipework/{container}?ifname=IFNAME -> 204
- `boxnet hostbridge create BRIDGE --uplink NIC` -> POST /boxnet/hostbridges {"Name", "Uplink"}
  -> 201 {"Name"}; `hostbridge ls` -> GET /boxnet/hostbridges -> [{"Name", "Uplink", ...}];
  `hostbridge rm BRIDGE` -> DELETE /boxnet/hostbridges/{name} -> 204.
"""

from __future__ import annotations

import argparse
import sys

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

_DHCP_CLIENTS = ("dhcp", "udhcpc", "dhclient", "dhcpcd")


def register(sub: Any) -> None:
    from boxnet.cli.main import group_parser, verb

    p = verb(
        sub,
        "pipework",
        usage="boxnet pipework HOSTIF [-i IFNAME] [-l HOSTIFNAME] CONTAINER "
        "IP/MASK[@GATEWAY]|dhcp [MAC|U:STRING]\n       boxnet pipework --rm [-i IFNAME] HOSTIF "
        "CONTAINER",
    )
    p.add_argument("--rm", action="store_true", help="remove the attachment (-i, default eth1)")
    p.add_argument("-i", dest="ifname", default="eth1", help="interface in the container (eth1)")
    p.add_argument("-l", dest="host_ifname", default="", help="name of the host-side interface")
    p.add_argument("host_if", metavar="HOSTIF", help="host bridge or NIC")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("address", nargs="?", default="", metavar="IP/MASK[@GATEWAY]|dhcp")
    p.add_argument("mac", nargs="?", default="", metavar="MAC|U:STRING")
    p.set_defaults(func=cmd_pipework)
    _, hb = group_parser(sub, "hostbridge")
    p = hb.add_parser("create", help="create BRIDGE and move NIC's addresses onto it")
    p.add_argument("bridge", metavar="BRIDGE")
    p.add_argument("--uplink", required=True, metavar="NIC", help="the host NIC to enslave")
    p.set_defaults(func=cmd_hostbridge_create)
    p = hb.add_parser("ls", aliases=["list"], help="list host bridges")
    p.add_argument("--format", help='"table", "json" or a Go template')
    p.set_defaults(func=cmd_hostbridge_ls)
    p = hb.add_parser("rm", aliases=["remove"], help="undo hostbridge create")
    p.add_argument("bridge", metavar="BRIDGE")
    p.set_defaults(func=cmd_hostbridge_rm)


def _address(text: str) -> tuple[str, str]:
    """(Address, Gateway) from pipework's `IP/MASK[@GATEWAY]` or a DHCP client spec."""
    from ipaddress import ip_address, ip_interface

    if text.split(":", 1)[0].split("-", 1)[0] in _DHCP_CLIENTS:
        return text, ""
    address, _, gateway = text.partition("@")
    if "/" not in address:
        raise InvalidArgument(
            f'invalid address "{text}": no netmask', f"maybe you meant {address}/24?"
        )
    try:
        interface = ip_interface(address)
    except ValueError:
        raise InvalidArgument(
            f'invalid address "{text}"', "expected IP/MASK[@GATEWAY] or dhcp, e.g. 192.168.1.5/24"
        ) from None
    if gateway:
        try:
            gw = ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f'invalid gateway "{gateway}": not an IP address') from None
        if gw.version != interface.version:
            raise InvalidArgument(f'gateway "{gateway}" and address "{address}" differ in family')
    return address, gateway


def build_pipework(args: argparse.Namespace) -> dict[str, Any]:
    from boxnet.parsing.names import validate_ifname

    mac = args.mac
    if mac.startswith("U:"):
        if len(mac) == 2:
            raise InvalidArgument('invalid MAC "U:": no string after "U:"', "e.g. U:web1")
    elif mac:
        from boxnet.cli.run import parse_mac

        mac = parse_mac(mac)
    address, gateway = _address(args.address)
    return {
        "HostInterface": validate_ifname(args.host_if),
        "ContainerInterface": validate_ifname(args.ifname),
        "HostInterfaceName": validate_ifname(args.host_ifname) if args.host_ifname else "",
        "Container": args.container,
        "Address": address,
        "Gateway": gateway,
        "MacAddress": mac,
    }


def cmd_pipework(ctx: Any, args: argparse.Namespace) -> int:
    if args.rm:
        from boxnet.cli.client import quote
        from boxnet.parsing.names import validate_ifname

        ifname = quote(validate_ifname(args.ifname))
        ctx.client.request("DELETE", f"/boxnet/pipework/{quote(args.container)}?ifname={ifname}")
        return 0
    if not args.address:
        raise InvalidArgument(
            "pipework needs IP/MASK[@GATEWAY] or dhcp",
            "e.g. boxnet pipework br0 web 192.168.1.5/24",
        )
    ctx.client.request("POST", "/boxnet/pipework", build_pipework(args))
    return 0


def cmd_hostbridge_create(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.parsing.names import validate_ifname

    body = {"Name": validate_ifname(args.bridge), "Uplink": validate_ifname(args.uplink)}
    ctx.client.request("POST", "/boxnet/hostbridges", body)
    print(args.bridge)
    return 0


def cmd_hostbridge_ls(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.render import print_formatted, table

    bridges = ctx.client.call("GET", "/boxnet/hostbridges") or []

    def render(items: list[dict[str, Any]]) -> str:
        rows = [[str(b.get("Name", "")), str(b.get("Uplink", ""))] for b in items]
        return table(("BRIDGE", "UPLINK"), rows)

    print_formatted(args.format, bridges, render)
    return 0


def cmd_hostbridge_rm(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.client import quote

    ctx.client.request("DELETE", f"/boxnet/hostbridges/{quote(args.bridge)}")
    sys.stdout.write(args.bridge + "\n")
    return 0
