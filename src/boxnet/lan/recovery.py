"""Resolving LAN changes cut short by a crash, from their intent rows (store/intents.py).

hostbridge create: finished when the move was complete (only the record was missing), else
undone: the NIC gets back the addresses and routes the row saved, and the bridge goes. A host
left without its address is the one outcome that must never survive a restart.
hostbridge rm: finished (the user asked for it; the row says what goes back on the NIC).
pipework attach: finished when recorded, else undone (the link in the container, the host's veth
end, a bridge that attach created). pipework detach: finished.
Every step is idempotent, so resolving a row twice (a crash during recovery) is harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boxnet.errors import KernelError
from boxnet.kernel import lan as klan
from boxnet.kernel import links
from boxnet.lan.pipework import Attachment

if TYPE_CHECKING:
    from pyroute2 import IPRoute

    from boxnet.lan import Lan
    from boxnet.store.intents import Intent

PIPEWORK_VETH_PREFIX = "bxpw"


def resolve(lan: Lan, intent: Intent) -> str:
    """Finish or undo one interrupted change; returns what was done, for the log and gc."""
    p = intent.payload
    if intent.kind == "hostbridge.create":
        return _hostbridge_create(lan, p)
    if intent.kind == "hostbridge.rm":
        _put_back(lan.hostbridges.ipr, p["Name"], p["Uplink"], klan.LinkState.from_json(p["Saved"]))
        lan.records.delete_hostbridge(p["Name"])
        return f"finished: {p['Uplink']} has its addresses and routes, {p['Name']} is gone"
    if intent.kind == "pipework.attach":
        return _pipework_attach(lan, p)
    if intent.kind == "pipework.detach":
        att = Attachment(**p["attachment"])
        lan.records.delete_attachment(att.container_id, att.ifname)
        lan.pipework._unplug(p["netns_path"], att)
        return f"finished: {att.ifname} unplugged from {att.host_if}"
    return "unknown kind: dropped"


def _hostbridge_create(lan: Lan, doc: dict[str, Any]) -> str:
    ipr = lan.hostbridges.ipr
    name, uplink = doc["Name"], doc["Uplink"]
    saved = klan.LinkState.from_json(doc["Saved"])
    if _moved(ipr, name, uplink, saved):
        if not any(d["Name"] == name for d in lan.records.hostbridges()):
            lan.records.put_hostbridge(name, doc)
        return f"finished: {name} carries {uplink}'s addresses and routes, recorded"
    _put_back(ipr, name, uplink, saved)
    return f"undone: {uplink} has its addresses and routes back, {name} is gone"


def _moved(ipr: IPRoute, name: str, uplink: str, saved: klan.LinkState) -> bool:
    """Is the bridge up with the uplink enslaved and every saved address and route on it?"""
    br, up = links.link_info(ipr, name), links.link_info(ipr, uplink)
    if br is None or up is None or br.kind != "bridge" or up.master != br.index:
        return False
    now = klan.snapshot(ipr, name)
    if now is None:
        return False
    have_addrs = {(a.family, a.address, a.prefixlen) for a in now.addresses}
    have_routes = {_route_key(r) for r in now.routes}
    return all((a.family, a.address, a.prefixlen) in have_addrs for a in saved.addresses) and all(
        _route_key(r) in have_routes for r in saved.routes
    )


def _route_key(r: klan.RouteState) -> tuple[object, ...]:
    return (r.family, r.dst, r.dst_len, r.gateway, r.priority)


def _put_back(ipr: IPRoute, name: str, uplink: str, saved: klan.LinkState) -> None:
    """Whatever step the move (or the removal) reached: saved state onto the uplink, bridge gone.
    Routes and addresses leave the bridge first: the kernel refuses a second default route."""
    up = links.link_info(ipr, uplink)
    if up is None:
        raise KernelError(f"uplink {uplink} is gone: cannot give its addresses back")
    br = links.link_info(ipr, name)
    if br is not None and br.kind == "bridge":
        for r in saved.routes:
            klan.del_route(ipr, r, br.index)
        for a in saved.addresses:
            klan.del_addr(ipr, a, br.index)
        if up.master == br.index:
            klan.set_master(ipr, up.index, 0)
    for a in saved.addresses:
        klan.add_addr(ipr, a, up.index)
    for r in saved.routes:
        klan.add_route(ipr, r, up.index)
    if br is not None and br.kind == "bridge":
        ports = klan.bridge_ports(ipr, br.index)
        if ports:
            raise KernelError(f"{uplink} is restored, but {name} still has ports {ports}: kept")
        links.delete_link(ipr, name)


def _pipework_attach(lan: Lan, p: dict[str, Any]) -> str:
    cid, ifname = p["container_id"], p["ifname"]
    if any(d["ifname"] == ifname for d in lan.records.attachments(cid)):
        return f"finished: {ifname} on {p['host_if']} is recorded"
    att = Attachment(
        container_id=cid,
        host_if=p["host_if"],
        kind="",
        ifname=ifname,
        host_ifname=p["host_ifname"],
        mac="",
        address="",
        gateway="",
        dhcp="",
        created_bridge=not p["bridge_existed"],
    )
    lan.pipework._unplug(p["netns_path"], att)
    return f"undone: {ifname} and {p['host_ifname']} removed"


def collect(lan: Lan, present: frozenset[str]) -> list[str]:
    """pipework veth ends on the host that no attachment record names (gc)."""
    owned = {d["host_ifname"] for d in lan.records.attachments() if d["host_ifname"]}
    removed = []
    for name in sorted(present):
        if name.startswith(PIPEWORK_VETH_PREFIX) and name not in owned:
            links.delete_link(lan.hostbridges.ipr, name)
            removed.append(f"pipework veth {name}")
    return removed
