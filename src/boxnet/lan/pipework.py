"""`boxnet pipework`: jpetazzo/pipework's attach, plus what it lacks (a record, undo, re-apply).

HOSTIF is a Linux bridge (a veth is plugged into it; a missing `br*` name is created) or a NIC
(a macvlan child in bridge mode). The attachment is recorded per (container, interface) and
re-applied by `on_setup` each time the container's namespace is built again (restart).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boxnet import faults
from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.kernel import lan as klan
from boxnet.kernel import links
from boxnet.lan import dhcp
from boxnet.model import Container, State
from boxnet.parsing.body import Field
from boxnet.parsing.names import is_unicast_mac
from boxnet.txn import Undo

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.store.intents import Intents
    from boxnet.store.lan_records import LanRecords

log = logging.getLogger("boxnet.lan")

DHCP_CLIENTS = ("dhcp", "udhcpc")


def mac_from_string(text: str) -> str:
    """pipework's `U:STRING`: 02: + the first 5 bytes of md5(`echo STRING`), a stable local MAC."""
    digest = hashlib.md5((text + "\n").encode()).hexdigest()
    return "02:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))


def random_mac() -> str:
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


@dataclass(frozen=True)
class Attachment:
    container_id: str
    host_if: str
    kind: str  # "veth" (into a bridge) or "macvlan" (child of a NIC)
    ifname: str
    host_ifname: str  # the veth's host end ("" for macvlan)
    mac: str
    address: str  # "IP/MASK", or "" for DHCP before a lease
    gateway: str
    dhcp: str  # "" or the client spec as typed ("dhcp", "udhcpc:...")
    created_bridge: bool

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_request(raw: Any) -> dict[str, str]:
    """`POST /boxnet/pipework` (shapes in docs/API.md); interface names are checked here, before
    any kernel call, as the CLI does."""
    from boxnet.parsing.names import validate_ifname

    body = Field(raw)
    body.obj()  # the root must be an object
    keys = ("HostInterface", "ContainerInterface", "HostInterfaceName", "Container")
    out = {key: body[key].text() for key in (*keys, "Address", "Gateway", "MacAddress")}
    if not out["HostInterface"] or not out["Container"]:
        raise InvalidArgument("pipework needs HostInterface and Container")
    out["ContainerInterface"] = out["ContainerInterface"] or "eth1"
    for key in ("HostInterface", "ContainerInterface", "HostInterfaceName"):
        if out[key]:
            validate_ifname(out[key])
    if out["Gateway"]:
        try:
            IPv4Address(out["Gateway"])
        except ValueError:
            raise InvalidArgument(
                f"Gateway: invalid IPv4 address {out['Gateway']!r}", "e.g. 192.168.1.1"
            ) from None
    mac = out["MacAddress"]
    if mac and not mac.startswith("U:") and not is_unicast_mac(mac):
        raise InvalidArgument(
            f"MacAddress: invalid MAC address {mac!r}",
            hint="a unicast MAC such as 02:42:c0:a8:c6:05, or U:STRING",
        )
    return out


class Pipework:
    def __init__(
        self, ipr: IPRoute, records: LanRecords, state_dir: Path, intents: Intents
    ) -> None:
        self.ipr = ipr
        self.records = records
        self.state_dir = state_dir
        self.intents = intents

    # -- attach ---------------------------------------------------------------------------------
    def attach(self, c: Container, req: dict[str, str]) -> Attachment:
        if c.state != State.RUNNING or not c.netns_path:
            raise Conflict(
                f"container {c.name} is not running",
                hint=f"start it first: boxnet start {c.name}",
            )
        spec = req["Address"]
        client = spec.split(":", 1)[0].split("-", 1)[0]
        address, gateway = "", req["Gateway"]
        if client in DHCP_CLIENTS:
            dhcp_spec = spec
        elif client in ("dhclient", "dhcpcd"):
            raise InvalidArgument(
                f"DHCP client {client} is not supported", hint="use dhcp (busybox udhcpc)"
            )
        else:
            dhcp_spec = ""
            address = str(_check_address(spec, gateway))
        mac = req["MacAddress"]
        mac = mac_from_string(mac[2:]) if mac.startswith("U:") else (mac or random_mac())
        ifname = req["ContainerInterface"]
        if klan.link_exists_in(c.netns_path, ifname):
            raise Conflict(
                f"container {c.name} already has an interface {ifname}",
                hint="choose another one with -i",
            )
        att = Attachment(
            container_id=c.id,
            host_if=req["HostInterface"],
            kind="",
            ifname=ifname,
            # Named now, so that the intent row can say what a crash may leave on the host.
            host_ifname=req["HostInterfaceName"] or "bxpw" + secrets.token_hex(4),
            mac=mac,
            address=address,
            gateway=gateway,
            dhcp=dhcp_spec,
            created_bridge=False,
        )
        with Undo(f"pipework {att.host_if} {ifname} of {c.name}") as undo:
            payload = {
                "container_id": c.id,
                "netns_path": c.netns_path,
                "ifname": ifname,
                "host_if": att.host_if,
                "host_ifname": att.host_ifname,
                "bridge_existed": links.link_info(self.ipr, att.host_if) is not None,
            }
            self.intents.begin("pipework.attach", f"{c.id}/{ifname}", payload, undo)
            att = self._realise(c.netns_path, att, probe=True, journaled=True)
            undo.push("unplug", partial(self._unplug, c.netns_path, att))
            self.records.put_attachment(c.id, ifname, att.to_json())
            faults.point("pipework.attach.recorded")
            undo.commit()
        return att

    def _realise(
        self, netns_path: str, att: Attachment, probe: bool, journaled: bool = False
    ) -> Attachment:
        """Build the attachment; `journaled` (an attach, not a re-apply) passes fault points."""
        ipr = self.ipr
        point = faults.point if journaled else _no_fault
        with Undo(f"pipework {att.host_if} {att.ifname}") as undo:
            info = links.link_info(ipr, att.host_if)
            created = att.created_bridge
            if info is None:
                if not att.host_if.startswith("br"):
                    raise NotFound(
                        f"host interface {att.host_if} does not exist",
                        hint="only a missing br* name is created (as pipework does)",
                    )
                klan.create_bridge(ipr, att.host_if, None, 1500)
                undo.push("delete bridge", lambda: links.delete_link(ipr, att.host_if))
                created = True
                info = links.link_info(ipr, att.host_if)
                assert info is not None
                point("pipework.attach.bridge")
            mtu = klan.snapshot(ipr, att.host_if)
            mtu_value = mtu.mtu if mtu else 1500
            if info.kind == "bridge":
                host_ifname = att.host_ifname or "bxpw" + secrets.token_hex(4)
                klan.add_veth_to_bridge(
                    ipr, host_ifname, info.index, netns_path, att.ifname, att.mac, mtu_value
                )
                undo.push("delete veth", lambda: links.delete_link(ipr, host_ifname))
                kind = "veth"
            else:
                host_ifname = ""
                klan.add_macvlan(ipr, att.ifname, info.index, "bridge", att.mac, netns_path)
                kind = "macvlan"
            undo.push("delete interface", lambda: klan.delete_link_in(netns_path, att.ifname))
            point("pipework.attach.link")
            klan.configure_inside(netns_path, att.ifname, (), ())
            address, gateway = att.address, att.gateway
            if att.dhcp:
                lease = dhcp.request(netns_path, att.ifname, att.dhcp, self.state_dir)
                address, gateway = str(lease.interface), str(lease.router or "")
            iface = IPv4Interface(address)
            if probe:
                owner = klan.arp_probe(netns_path, att.ifname, att.mac, iface.ip)
                if owner is not None:
                    raise Conflict(
                        f"{iface.ip} is already in use on the LAN (answered by {owner})",
                        hint="choose a free address",
                    )
            klan.configure_inside(
                netns_path, att.ifname, (iface,), (IPv4Address(gateway),) if gateway else ()
            )
            point("pipework.attach.address")
            klan.gratuitous_arp(netns_path, att.ifname, att.mac, iface.ip)
            undo.commit()
        return Attachment(
            **{
                **att.to_json(),
                "kind": kind,
                "host_ifname": host_ifname,
                "created_bridge": created,
                "address": address,
                "gateway": gateway,
            }
        )

    # -- restart, removal -------------------------------------------------------------------------
    def on_setup(self, c: Container, netns_path: str, undo: Undo) -> None:
        """Re-apply the recorded attachments into a freshly built namespace (container start)."""
        for doc in self.records.attachments(c.id):
            att = Attachment(**doc)
            if att.host_ifname:  # the old namespace's veth may not be freed yet: same name
                links.delete_link(self.ipr, att.host_ifname)
            # DHCP asks again (the server usually hands back the same lease); a static address
            # is re-probed: someone may have taken it while the container was down.
            done = self._realise(netns_path, att, probe=not att.dhcp)
            if done.host_ifname:
                undo.push("delete veth", partial(links.delete_link, self.ipr, done.host_ifname))
            self.records.put_attachment(c.id, att.ifname, done.to_json())

    def detach(self, c: Container, ifname: str) -> None:
        docs = {d["ifname"]: d for d in self.records.attachments(c.id)}
        if ifname not in docs:
            raise NotFound(
                f"container {c.name} has no pipework interface {ifname}",
                hint="boxnet inspect shows them under NetworkSettings.Networks",
            )
        att = Attachment(**docs[ifname])
        netns_path = c.netns_path if c.state == State.RUNNING else ""
        with Undo(f"pipework --rm {att.host_if} {ifname} of {c.name}") as undo:
            payload = {"netns_path": netns_path, "attachment": att.to_json()}
            self.intents.begin("pipework.detach", f"{c.id}/{ifname}", payload, undo)
            if netns_path:
                klan.delete_link_in(netns_path, ifname)
                faults.point("pipework.detach.unplugged")
            if att.host_ifname:
                links.delete_link(self.ipr, att.host_ifname)
                faults.point("pipework.detach.veth-deleted")
            self.records.delete_attachment(c.id, ifname)
            faults.point("pipework.detach.forgotten")
            self._drop_created_bridge(att)
            undo.commit()

    def _unplug(self, netns_path: str, att: Attachment) -> None:
        """Remove what attach built (idempotent: also finishes a detach cut short by a crash)."""
        if netns_path and Path(netns_path).exists():
            klan.delete_link_in(netns_path, att.ifname)
        if att.host_ifname:
            links.delete_link(self.ipr, att.host_ifname)
        self._drop_created_bridge(att)

    def forget(self, container_id: str) -> None:
        """The container is being removed: its interfaces die with its namespace."""
        atts = [Attachment(**d) for d in self.records.attachments(container_id)]
        self.records.delete_attachments(container_id)
        for att in atts:
            if att.host_ifname:
                links.delete_link(self.ipr, att.host_ifname)
            self._drop_created_bridge(att)

    def _drop_created_bridge(self, att: Attachment) -> None:
        if not att.created_bridge:
            return
        others = [d for d in self.records.attachments() if d["host_if"] == att.host_if]
        info = links.link_info(self.ipr, att.host_if)
        if not others and info is not None and not klan.bridge_ports(self.ipr, info.index):
            links.delete_link(self.ipr, att.host_if)

    def inspect(self, container_id: str) -> dict[str, Any]:
        """NetworkSettings.Networks entries, keyed "pipework:HOSTIF" (documented in API.md)."""
        out = {}
        for doc in self.records.attachments(container_id):
            iface = IPv4Interface(doc["address"]) if doc["address"] else None
            out[f"pipework:{doc['host_if']}"] = {
                "NetworkID": "",
                "EndpointID": "",
                "Gateway": doc["gateway"],
                "IPAddress": str(iface.ip) if iface else "",
                "IPPrefixLen": iface.network.prefixlen if iface else 0,
                "MacAddress": doc["mac"],
                "InterfaceName": doc["ifname"],
                "HostInterfaceName": doc["host_ifname"],
                "Driver": doc["kind"],
                "DHCP": doc["dhcp"] or None,
            }
        return out


def _no_fault(_step: str) -> None:
    pass


def _check_address(spec: str, gateway: str) -> IPv4Interface:
    try:
        iface = IPv4Interface(spec)
    except ValueError:
        raise InvalidArgument(
            f'invalid address "{spec}"', "expected IP/MASK, e.g. 192.168.1.5/24"
        ) from None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise InvalidArgument(
            f"{iface.ip} is the {'network' if iface.ip == net.network_address else 'broadcast'}"
            f" address of {net}",
            hint="choose a host address",
        )
    if gateway:
        try:
            gw = IPv4Address(gateway)
        except ValueError:
            raise InvalidArgument(
                f'invalid gateway "{gateway}"', "expected an IPv4 address, e.g. 192.168.1.1"
            ) from None
        if gw not in net:
            raise InvalidArgument(
                f"gateway {gw} is outside {net} (from {spec})",
                hint="check the mask, e.g. /24 for a 255.255.255.0 LAN",
            )
        if gw == iface.ip:
            raise InvalidArgument(f"gateway {gw} is the container's own address")
    return iface
