"""The nftables backend: table `inet boxnet` (and `bridge boxnet` for ICC), one transaction each.

The rules, and why they are what they are: nft_rules.py. This keeps one libnftables context,
what it last applied (so a network change is a delta, not the whole tables again) and the
shape the guard (`is_intact`) expects.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from boxnet.errors import KernelError
from boxnet.firewall.base import DnatIntent, FirewallModel, Published
from boxnet.firewall.loopback6 import Loopback6Proxy
from boxnet.firewall.nft_rules import (
    TABLE,
    Parts,
    _dnat_key_value,
    parts_of,
    render_delta,
    render_dnat_change,
    render_ruleset,
    render_tables,
    render_teardown,
    script_shape,
    shape_of,
)

__all__ = ["NftablesBackend", "render_ruleset", "render_teardown", "script_shape"]

log = logging.getLogger("boxnet.firewall")


class NftablesBackend:
    """Keeps one libnftables context open: no fork per change."""

    name = "nftables"

    def __init__(self) -> None:
        import nftables  # the Debian libnftables through its ctypes binding

        self._nft = nftables.Nftables()
        self._nft.set_json_output(False)
        self._nft.set_handle_output(False)
        self._lock = threading.Lock()
        self._published = Published()
        self._proxy = Loopback6Proxy()
        # What the last rebuild left, for is_intact: the parts, and their shape once asked for
        # (rendering it cost ~0.3 ms of every network create/rm at 100 networks; the guard
        # asks far less often than networks change in a busy minute).
        self._built: Parts | None = None
        self._shape: dict[str, int] | None = None
        # What is applied: the networks' parts, and every DNAT (None: rebuild whole next time).
        self._applied: Parts | None = None
        self._dnats: set[DnatIntent] = set()

    def details(self) -> list[tuple[str, str]]:
        return [("Tables", f"inet {TABLE}, bridge {TABLE}")]

    def run(self, script: str) -> str:
        if not script.strip():
            return ""
        with self._lock:
            rc, out, err = self._nft.cmd(script)
        if rc != 0:
            raise KernelError(f"nftables transaction failed: {err.strip() or out.strip()}")
        return str(out)

    def list_json(self, what: str) -> dict[str, Any]:
        with self._lock:
            self._nft.set_json_output(True)
            try:
                rc, out, err = self._nft.cmd(what)
            finally:
                self._nft.set_json_output(False)
        if rc != 0:
            raise KernelError(f"nft {what}: {err.strip()}")
        return dict(json.loads(out))

    def rebuild(self, model: FirewallModel) -> None:
        parts = parts_of(model.bridges)
        if self._applied is not None and self._dnats == set(model.dnats):
            # A network change: its elements and chain only. A failure (the tables changed
            # behind our back since the guard's last look) falls back to the whole tables.
            try:
                self.run(render_delta(self._applied, parts))
            except KernelError as exc:
                log.info("firewall delta failed, rebuilding the tables whole: %s", exc)
            else:
                self._applied, self._built, self._shape = parts, parts, None
                return
        self._applied = None
        self.run(render_tables(parts, list(model.dnats)))
        self._proxy.reset(model.dnats)
        self._published.reset(model.dnats)
        self._dnats = set(model.dnats)
        # What the script makes, not read back: reading both tables back cost ~6 ms of every
        # network create/rm at 100 networks (tests/e2e/test_nft_shape.py checks both agree).
        self._applied, self._built, self._shape = parts, parts, None

    def _current_shape(self) -> dict[str, int] | None:
        """Rules per chain and the maps of boxnet's tables (terse: no map elements, so the
        check costs the same with 10,000 published ports); None when a table is gone."""
        shape: dict[str, int] = {}
        with self._lock:
            self._nft.set_json_output(True)
            self._nft.set_terse_output(True)
            try:
                for family in ("inet", "bridge"):
                    rc, out, _err = self._nft.cmd(f"list table {family} {TABLE}")
                    if rc != 0:
                        return None
                    for item in json.loads(out)["nftables"]:
                        if "rule" in item:
                            key = f"{family} chain {item['rule']['chain']}"
                            shape[key] = shape.get(key, 0) + 1
                        elif "chain" in item or "map" in item:
                            kind = "chain" if "chain" in item else "map"
                            shape.setdefault(f"{family} {kind} {item[kind]['name']}", 0)
            finally:
                self._nft.set_json_output(False)
                self._nft.set_terse_output(False)
        return shape

    def add_dnats(self, dnats: list[DnatIntent]) -> None:
        if not dnats:
            return
        self._proxy.add(dnats)
        try:
            self.run(render_dnat_change("add", dnats))
        except KernelError:
            self._proxy.remove(dnats)
            raise
        self._published.add(dnats)
        self._dnats.update(dnats)

    def remove_dnats(self, dnats: list[DnatIntent]) -> None:
        if not dnats:
            return
        self._published.remove(dnats)
        self._proxy.remove(dnats)
        self._dnats.difference_update(dnats)
        try:
            self.run(render_dnat_change("delete", dnats))
        except KernelError:
            # One missing element fails the whole batch; delete one by one, ignoring absence.
            for d in dnats:
                try:
                    self.run(render_dnat_change("delete", [d]))
                except KernelError:
                    pass

    def expected_shape(self) -> dict[str, int] | None:
        """The shape (`_current_shape`) the last rebuild left; None before any."""
        if self._shape is None and self._built is not None:
            self._shape = shape_of(self._built)
        return self._shape

    def is_intact(self) -> bool:
        """Every table, chain and map as rebuilt, each chain with its rules (a flushed table or
        chain counts as removed), and one published port's element still there in each map that
        has any (`flush map inet boxnet pub_any6` alone counts as removed), in one command."""
        expected = self.expected_shape()
        if expected is None or self._current_shape() != expected:
            self._applied = None  # the next rebuild (the guard's) makes the tables whole
            return False
        probes = self._published.probes(lambda d: _dnat_key_value(d)[0])
        gets = []
        for d in probes:
            map_name, element = _dnat_key_value(d)
            gets.append(f"get element inet {TABLE} {map_name} {{ {element.split(' : ')[0]} }}")
        six = next((d for d in probes if d.version == 6), None)
        if six is not None:  # the routed networks' set, filled with the IPv6 DNATs
            target = f"{six.container_ip} . {six.proto} . {six.container_port}"
            gets.append(f"get element inet {TABLE} open6 {{ {target} }}")
        if not gets:
            return True
        with self._lock:
            rc, _out, _err = self._nft.cmd("\n".join(gets) + "\n")
        if rc != 0:
            self._applied = None
        return rc == 0

    def teardown(self) -> None:
        self._applied = None
        self._proxy.close()
        self.run(render_teardown())
