"""The nftables backend: table `inet boxnet` (and `bridge boxnet` for ICC), one transaction each.

One `inet` table serves both address families: rules that are IPv4 by nature (127.0.0.0/8)
say `ip`, the per-network ones follow each subnet's family (`ip saddr` / `ip6 saddr`), published
ports have one set of maps per family (pub_any6 and pub_addr6 for IPv6; ::1 bindings are not
rules at all but the loopback proxy's, see loopback6.py), and the forward isolation holds for
both families alike.

Design, in the order a packet meets it:
- raw prerouting: a packet arriving on one of our bridges for 127.0.0.0/8 is dropped. Our bridges
  have route_localnet=1 (needed so the host's own 127.0.0.1 -> container traffic can be routed
  out), and this rule keeps containers from using that to reach the host's loopback services.
- nat prerouting: traffic for a local address (never 127/8: that is how Docker < 28 and
  CVE-2020-8558 let a LAN neighbour reach loopback-published ports) is DNATed through two maps.
  `pub_any` holds bindings on every address; `pub_addr` those bound to one address. Loopback
  bindings are only in `pub_lo`, consulted from nat output alone: the host's own processes.
- nat output: the same for traffic the host itself sends (127.0.0.1 included).
- nat postrouting: per network `ip saddr SUBNET oifname != BRIDGE masquerade`; DNATed traffic from
  a container (hairpin: a container reaching a published port through the host address, its own
  included) and 127/8-sourced traffic (host -> 127.0.0.1:port) are masqueraded so replies come
  back through the host. External clients keep their address. Hairpin is matched by source subnet,
  not by input interface: where br_netfilter is loaded, a hairpin flow between two ports of one
  bridge is NATed at bridge level, where postrouting has no input interface at all (and the
  publishing container's bridge port has hairpin mode on, set by the sandbox, so its own
  hairpin can leave through the port it came in).
- filter forward: internal bridges route nothing; replies and DNATed flows to containers pass;
  everything else routed into a bridge from another interface is dropped (isolation between
  networks, and no direct routing to unpublished container ports). The chain only ever drops
  packets whose input or output is one of our bridges: other bridges (the user's br0) and the
  FORWARD policy are untouched.
Maps make a lookup cost the same with 1 or 10,000 published ports.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from boxnet.errors import KernelError
from boxnet.firewall.base import BridgeIntent, DnatIntent, FirewallModel, Published
from boxnet.firewall.loopback6 import Loopback6Proxy

TABLE = "boxnet"
# Map key and value types: (proto, port) or (address, proto, port) -> (container ip, port).
ANY_KEY = "inet_proto . inet_service"
ADDR_KEY = "ipv4_addr . inet_proto . inet_service"
TARGET = "ipv4_addr . inet_service"
ADDR_KEY6 = "ipv6_addr . inet_proto . inet_service"
TARGET6 = "ipv6_addr . inet_service"
MAPS = ("pub_any", "pub_addr", "pub_lo", "pub_any6", "pub_addr6")
OPEN6 = "ipv6_addr . inet_proto . inet_service"  # a published container port, as routed to


def _q(name: str) -> str:
    """Quote an interface name for nft (names are validated before they get here)."""
    return '"' + name.replace('"', "") + '"'


def _set_elements(items: list[str]) -> str:
    return "elements = { " + ", ".join(items) + " }" if items else ""


def _dnat_key_value(d: DnatIntent) -> tuple[str, str]:
    value = f"{d.container_ip} . {d.container_port}"
    six = "6" if d.version == 6 else ""
    if d.is_any:
        return f"pub_any{six}", f"{d.proto} . {d.host_port} : {value}"
    if d.is_loopback:
        return "pub_lo", f"{d.host_ip} . {d.proto} . {d.host_port} : {value}"
    return f"pub_addr{six}", f"{d.host_ip} . {d.proto} . {d.host_port} : {value}"


def _group_elements(dnats: list[DnatIntent]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {name: [] for name in (*MAPS, "open6")}
    for d in dnats:
        if d.proxied:  # [::1]: the loopback proxy's
            continue
        if d.version == 6:  # what routed networks let in (every IPv6 target: cheap, exact)
            target = f"{d.container_ip} . {d.proto} . {d.container_port}"
            if target not in groups["open6"]:
                groups["open6"].append(target)
        map_name, element = _dnat_key_value(d)
        groups[map_name].append(element)
    return groups


def render_ruleset(model: FirewallModel) -> str:
    """The whole of boxnet's tables for `model`, as one nft script (delete + recreate)."""
    bridges = [b for b in model.bridges]  # one per (bridge, subnet): dual stack has two
    names = list(dict.fromkeys(_q(b.bridge) for b in bridges))
    internal = list(dict.fromkeys(_q(b.bridge) for b in bridges if b.internal))
    routed = list(dict.fromkeys(_q(b.bridge) for b in bridges if b.routed and not b.internal))
    same = [f"{name} . {name}" for name in names]
    subnets = sorted({str(b.subnet) for b in bridges if b.subnet.version == 4})
    subnets6 = sorted({str(b.subnet) for b in bridges if b.subnet.version == 6})
    # ICC off: same-subnet traffic between two ports of that bridge is dropped where it is
    # bridged. (`meta ibrname` would be neater but this kernel lacks nft_meta_bridge.)
    no_icc = "\n".join(
        f"\t\t{_ip(b)} saddr {b.subnet} {_ip(b)} daddr {b.subnet} drop"
        for b in bridges
        if not b.icc
    )
    elements = _group_elements(list(model.dnats))
    masq_rules = "\n".join(
        f"\t\t{_ip(b)} saddr {b.subnet} oifname != {_q(b.bridge)} masquerade"
        for b in bridges
        if b.masquerade and not b.internal
    )

    def map_elems(name: str) -> str:
        return _set_elements(elements[name])

    # `table ip boxnet` is where boxnet < 0.2 kept its rules: gone on the first rebuild.
    return f"""
table ip {TABLE}
delete table ip {TABLE}
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
	set bridges {{ type ifname; {_set_elements(names)} }}
	set internal {{ type ifname; {_set_elements(internal)} }}
	set routed {{ type ifname; {_set_elements(routed)} }}
	set open6 {{ type {OPEN6}; {map_elems("open6")} }}
	set same_bridge {{ type ifname . ifname; {_set_elements(same)} }}
	set subnets {{ type ipv4_addr; flags interval; auto-merge; {_set_elements(subnets)} }}
	set subnets6 {{ type ipv6_addr; flags interval; auto-merge; {_set_elements(subnets6)} }}
	map pub_any {{ type {ANY_KEY} : {TARGET}; {map_elems("pub_any")} }}
	map pub_addr {{ type {ADDR_KEY} : {TARGET}; {map_elems("pub_addr")} }}
	map pub_lo {{ type {ADDR_KEY} : {TARGET}; {map_elems("pub_lo")} }}
	map pub_any6 {{ type {ANY_KEY} : {TARGET6}; {map_elems("pub_any6")} }}
	map pub_addr6 {{ type {ADDR_KEY6} : {TARGET6}; {map_elems("pub_addr6")} }}
	chain raw_prerouting {{
		type filter hook prerouting priority raw; policy accept;
		iifname @bridges ip daddr 127.0.0.0/8 drop
		iifname @bridges ip6 daddr ::1 drop
	}}
	chain nat_prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local jump publish
		ip6 daddr != ::1 fib daddr type local jump publish
	}}
	chain nat_output {{
		type nat hook output priority -100; policy accept;
		fib daddr type local jump publish_local
	}}
	chain publish {{
		dnat ip to ip daddr . meta l4proto . th dport map @pub_addr
		meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub_any
		dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub_addr6
		meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub_any6
	}}
	chain publish_local {{
		dnat ip to ip daddr . meta l4proto . th dport map @pub_lo
		jump publish
	}}
	chain nat_postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		oifname @bridges ip saddr 127.0.0.0/8 masquerade
		oifname @bridges ct status dnat ip saddr @subnets masquerade
		oifname @bridges ct status dnat ip6 saddr @subnets6 masquerade
{masq_rules}
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname @internal iifname . oifname != @same_bridge drop
		oifname @internal iifname . oifname != @same_bridge drop
		oifname @bridges ct state established,related accept
		oifname @bridges ct status dnat accept
		oifname @routed ip6 daddr . meta l4proto . th dport @open6 accept
		oifname @routed meta l4proto ipv6-icmp accept
		oifname @bridges iifname . oifname != @same_bridge drop
	}}
}}
table bridge {TABLE}
delete table bridge {TABLE}
table bridge {TABLE} {{
	chain forward {{
		type filter hook forward priority filter; policy accept;
{no_icc}
	}}
}}
"""


def _ip(b: BridgeIntent) -> str:
    """The nft payload keyword of the bridge's subnet family."""
    return "ip" if b.subnet.version == 4 else "ip6"


def script_shape(script: str) -> dict[str, int]:
    """The shape (`_current_shape`) the tables of a render_ruleset script have once applied."""
    shape: dict[str, int] = {}
    family, chain = "", ""
    for raw in script.splitlines():
        line = raw.strip()
        if line.startswith("table ") and line.endswith("{"):
            family = line.split()[1]
        elif line.startswith("chain ") and line.endswith("{"):
            chain = f"{family} chain {line.split()[1]}"
            shape[chain] = 0
        elif line.startswith("map "):
            shape[f"{family} map {line.split()[1]}"] = 0
        elif line == "}":
            chain = ""
        elif chain and line and not line.startswith("type "):
            shape[chain] += 1
    return shape


def render_teardown() -> str:
    # "table X" first makes the delete succeed whether or not the table exists; `ip` is the
    # table of boxnet < 0.2.
    return "".join(
        f"table {fam} {TABLE}\ndelete table {fam} {TABLE}\n" for fam in ("ip", "inet", "bridge")
    )


def render_dnat_change(verb: str, dnats: list[DnatIntent]) -> str:
    lines = []
    for map_name, elements in _group_elements(dnats).items():
        for start in range(0, len(elements), 1000):
            chunk = elements[start : start + 1000]
            if chunk:
                lines.append(f"{verb} element inet {TABLE} {map_name} {{ {', '.join(chunk)} }}")
    return "\n".join(lines) + "\n" if lines else ""


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
        self._shape: dict[str, int] | None = None  # what the last rebuild left (is_intact)

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
        script = render_ruleset(model)
        self.run(script)
        self._proxy.reset(model.dnats)
        self._published.reset(model.dnats)
        # What the script makes, not read back: reading both tables back cost ~6 ms of every
        # network create/rm at 100 networks (tests/e2e/test_firewall_backends.py checks both agree).
        self._shape = script_shape(script)

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

    def remove_dnats(self, dnats: list[DnatIntent]) -> None:
        if not dnats:
            return
        self._published.remove(dnats)
        self._proxy.remove(dnats)
        try:
            self.run(render_dnat_change("delete", dnats))
        except KernelError:
            # One missing element fails the whole batch; delete one by one, ignoring absence.
            for d in dnats:
                try:
                    self.run(render_dnat_change("delete", [d]))
                except KernelError:
                    pass

    def is_intact(self) -> bool:
        """Every table, chain and map as rebuilt, each chain with its rules (a flushed table or
        chain counts as removed), and one published port's map element still there."""
        if self._shape is None or self._current_shape() != self._shape:
            return False
        probe = self._published.probe()
        if probe is None:
            return True
        map_name, element = _dnat_key_value(probe)
        with self._lock:
            rc, _out, _err = self._nft.cmd(
                f"get element inet {TABLE} {map_name} {{ {element.split(' : ')[0]} }}"
            )
        return rc == 0

    def teardown(self) -> None:
        self._proxy.close()
        self.run(render_teardown())
