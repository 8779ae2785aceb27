"""`hostbridge create BRIDGE --uplink NIC`: the tutorial's ifcfg-br0 edit, done live.

Order matters for the host's reachability: the bridge is made first (with the NIC's MAC, so the
LAN's ARP caches stay right), then the NIC is enslaved and its addresses and routes are moved in
one quick burst; each step pushes its inverse, so a failure puts everything back. A crash cannot
run those inverses: the change's intent row (store/intents.py) carries the NIC's state from
before, and lan/recovery.py puts it back (or finishes the change) when the daemon starts again.
boxnet adds no firewall rule for the bridge: it is the user's, not one of boxnet's.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from boxnet import faults
from boxnet.clock import now_rfc3339
from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.kernel import lan as klan
from boxnet.kernel import links
from boxnet.txn import Undo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyroute2 import IPRoute

    from boxnet.store.intents import Intents
    from boxnet.store.lan_records import LanRecords

log = logging.getLogger("boxnet.lan")


class HostBridges:
    def __init__(self, ipr: IPRoute, records: LanRecords, intents: Intents) -> None:
        self.ipr = ipr
        self.records = records
        self.intents = intents

    def list(self) -> list[dict[str, Any]]:
        out = []
        for doc in self.records.hostbridges():
            info = links.link_info(self.ipr, doc["Name"])
            state = klan.snapshot(self.ipr, doc["Name"]) if info else None
            out.append(
                {
                    "Name": doc["Name"],
                    "Uplink": doc["Uplink"],
                    "Created": doc.get("Created", ""),
                    "MacAddress": state.mac if state else "",
                    "Addresses": [f"{a.address}/{a.prefixlen}" for a in state.addresses]
                    if state
                    else [],
                    "Present": info is not None,
                }
            )
        return out

    def _check_uplink(self, name: str, uplink: str) -> klan.LinkState:
        if any(doc["Name"] == name for doc in self.records.hostbridges()):
            raise Conflict(f"host bridge {name} already exists", hint="boxnet hostbridge ls")
        if links.link_info(self.ipr, name) is not None:
            raise Conflict(
                f"cannot create bridge {name}: an interface with that name exists",
                hint="choose another name",
            )
        info = links.link_info(self.ipr, uplink)
        if info is None:
            raise NotFound(
                f"uplink {uplink} does not exist", hint="ip link lists this host's interfaces"
            )
        if info.master is not None:
            master = next(
                (x.ifname for x in links.list_links(self.ipr) if x.index == info.master), "?"
            )
            raise Conflict(
                f"uplink {uplink} is already a port of bridge {master}",
                hint=f"use {master} itself (e.g. boxnet pipework {master} ...)",
            )
        if info.kind in ("bridge", "macvlan") or info.ifname == "lo":
            raise InvalidArgument(f"uplink {uplink} is a {info.kind or 'loopback'} interface")
        state = klan.snapshot(self.ipr, uplink)
        assert state is not None
        if not any(a.family == 2 for a in state.addresses):
            raise InvalidArgument(
                f"uplink {uplink} has no IPv4 address: nothing to move onto {name}",
                hint=f"give {uplink} its address first (or use DHCP on it), then retry",
            )
        return state

    def create(self, name: str, uplink: str) -> dict[str, Any]:
        state = self._check_uplink(name, uplink)
        doc = {"Name": name, "Uplink": uplink, "Created": now_rfc3339(), "Saved": state.to_json()}
        with Undo(f"hostbridge create {name}") as undo:
            # Journal first: once the addresses are off the NIC only this row remembers them.
            self.intents.begin("hostbridge.create", name, doc, undo)
            self._move(name, state, undo)
            self.records.put_hostbridge(name, doc)
            faults.point("hostbridge.create.recorded")
            undo.commit()
        log.info("host bridge %s created on %s", name, uplink)
        return doc

    def _move(self, name: str, state: klan.LinkState, undo: Undo) -> None:
        ipr = self.ipr
        br = klan.create_bridge(ipr, name, state.mac, state.mtu)
        undo.push("delete bridge", lambda: links.delete_link(ipr, name))
        faults.point("hostbridge.create.bridge")
        klan.set_master(ipr, state.index, br)
        undo.push("release uplink", lambda: klan.set_master(ipr, state.index, 0))
        faults.point("hostbridge.create.enslaved")
        _clear_link(ipr, state.routes, state.addresses, state.index, undo)
        faults.point("hostbridge.create.uplink-cleared")
        for a in state.addresses:
            klan.add_addr(ipr, a, br)
            undo.push("remove address", partial(klan.del_addr, ipr, a, br))
        faults.point("hostbridge.create.addresses-moved")
        for r in state.routes:
            klan.add_route(ipr, r, br)
            undo.push("remove route", partial(klan.del_route, ipr, r, br))
        faults.point("hostbridge.create.routes-moved")
        # Undo runs in reverse: routes off br, addresses off br, then back onto the uplink.

    def remove(self, name: str) -> None:
        doc = next((d for d in self.records.hostbridges() if d["Name"] == name), None)
        if doc is None:
            raise NotFound(f"host bridge {name} not found", hint="boxnet hostbridge ls lists them")
        uplink = doc["Uplink"]
        info = links.link_info(self.ipr, name)
        if info is None:  # already gone (rebooted without boxnetd): just forget it
            self.records.delete_hostbridge(name)
            return
        others = [p for p in klan.bridge_ports(self.ipr, info.index) if p != uplink]
        if others:
            raise Conflict(
                f"host bridge {name} still has ports: {', '.join(sorted(others))}",
                hint="remove those attachments first (boxnet pipework --rm ...)",
            )
        current = klan.snapshot(self.ipr, name)
        up = klan.snapshot(self.ipr, uplink)
        assert current is not None
        ipr = self.ipr
        with Undo(f"hostbridge rm {name}") as undo:
            # What the bridge carries now is what must land on the uplink: a crash half-way is
            # finished from this row (recovery.py), never left with the host unaddressed.
            payload = {"Name": name, "Uplink": uplink, "Saved": current.to_json()}
            self.intents.begin("hostbridge.rm", name, payload, undo)
            _clear_link(ipr, current.routes, current.addresses, info.index, undo)
            faults.point("hostbridge.rm.bridge-cleared")
            if up is not None:
                klan.set_master(ipr, up.index, 0)
                undo.push("re-enslave", lambda: klan.set_master(ipr, up.index, info.index))
                faults.point("hostbridge.rm.released")
                for a in current.addresses:
                    klan.add_addr(ipr, a, up.index)
                    undo.push("remove address", partial(klan.del_addr, ipr, a, up.index))
                faults.point("hostbridge.rm.addresses-restored")
                for r in current.routes:
                    klan.add_route(ipr, r, up.index)
                    undo.push("remove route", partial(klan.del_route, ipr, r, up.index))
                faults.point("hostbridge.rm.routes-restored")
            links.delete_link(ipr, name)
            faults.point("hostbridge.rm.bridge-deleted")
            undo.commit()
            self.records.delete_hostbridge(name)
            faults.point("hostbridge.rm.forgotten")

    def reapply(self) -> None:
        """At daemon start: rebuild recorded bridges that are missing (after a reboot)."""
        for doc in self.records.hostbridges():
            name, uplink = doc["Name"], doc["Uplink"]
            info = links.link_info(self.ipr, name)
            up = links.link_info(self.ipr, uplink)
            if info is not None and up is not None and up.master == info.index:
                continue
            if info is not None or up is None:
                log.warning("host bridge %s: cannot re-apply (bridge or uplink in the way)", name)
                continue
            state = klan.snapshot(self.ipr, uplink)
            if state is None or not state.addresses:
                log.warning("host bridge %s: uplink %s has no address to move", name, uplink)
                continue
            try:
                with Undo(f"hostbridge re-apply {name}") as undo:
                    saved = {**doc, "Saved": state.to_json()}  # the uplink as it is now
                    self.intents.begin("hostbridge.create", name, saved, undo)
                    self._move(name, state, undo)
                    undo.commit()
                log.info("host bridge %s re-applied on %s", name, uplink)
            except Exception as exc:
                log.warning("host bridge %s: re-apply failed: %s", name, exc)


def _clear_link(
    ipr: IPRoute,
    routes: Sequence[klan.RouteState],
    addresses: Sequence[klan.AddrState],
    index: int,
    undo: Undo,
) -> None:
    """Take the routes, then the addresses (routes depend on them), off a link, each with the
    undo step that puts it back (undo runs in reverse: addresses first, then routes)."""
    for r in routes:
        klan.del_route(ipr, r, index)
        undo.push("restore route", partial(klan.add_route, ipr, r, index))
    for a in addresses:
        klan.del_addr(ipr, a, index)
        undo.push("restore address", partial(klan.add_addr, ipr, a, index))
