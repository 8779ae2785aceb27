"""The nftables backend's rules: table `inet boxnet` (and `bridge boxnet` for ICC), as nft scripts.

One `inet` table serves both address families: rules that are IPv4 by nature (127.0.0.0/8)
say `ip`, the per-network ones follow each subnet's family (`ip saddr` / `ip6 saddr`), published
ports have one set of maps per family (pub_any6 and pub_addr6 for IPv6; ::1 bindings are not
rules at all but the loopback proxy's, see loopback6.py), and the forward isolation holds for
both families alike.

Design, in the order a packet meets it:
- raw prerouting: a packet arriving on one of our bridges for 127.0.0.0/8 is dropped. Our bridges
  have route_localnet=1 (needed so the host's own 127.0.0.1 -> container traffic can be routed
  out), and this rule keeps containers from using that to reach the host's loopback services.
  Every packet entering the host meets this chain, so each rule tests the destination (a load
  and a compare that fail at once for nearly all traffic) before the interface set lookup.
- nat prerouting: traffic for a local address (never 127/8: that is how Docker < 28 and
  CVE-2020-8558 let a LAN neighbour reach loopback-published ports) is DNATed through two maps.
  `pub_any` holds bindings on every address; `pub_addr` those bound to one address. Loopback
  bindings are only in `pub_lo`, consulted from nat output alone: the host's own processes.
- nat output: the same for traffic the host itself sends (127.0.0.1 included).
- nat postrouting: per network `ip saddr SUBNET oifname != BRIDGE masquerade`, in a chain of the
  network's own (masq_BRIDGE) reached through a verdict map keyed by source subnet; DNATed
  traffic from a container (hairpin: a container reaching a published port through the host
  address, its own included) and 127/8-sourced traffic (host -> 127.0.0.1:port) are masqueraded
  so replies come back through the host. External clients keep their address. Hairpin is
  matched by source subnet, not by input interface: where br_netfilter is loaded, a hairpin
  flow between two ports of one bridge is NATed at bridge level, where postrouting has no input
  interface at all (and the publishing container's bridge port has hairpin mode on, set by the
  sandbox, so its own hairpin can leave through the port it came in).
- filter forward: packets of established flows (and related ICMP) are accepted first, as
  Docker's DOCKER-CT does: every forwarded packet meets this chain, and with that rule first a
  flow's packets cost one conntrack test instead of up to seven set lookups (masquerade
  throughput 85% -> 98% of the same path with one bare masquerade rule, issue 20). A flow only
  becomes established if its first packet passed the rules below, so the verdicts are the same.
  Then: internal bridges route nothing; DNATed flows to containers pass;
  everything else routed into a bridge from another interface is dropped (isolation between
  networks, and no direct routing to unpublished container ports). An IPv6 routed network's
  published ports and ICMPv6 are open to traffic routed in from an interface that is not one of
  our bridges only: isolation holds for it as for the others (Docker's isolation chains come
  first too). The chain only ever drops packets whose input or output is one of our bridges:
  other bridges (the user's br0) and the FORWARD policy are untouched.
Maps make a lookup cost the same with 1 or 10,000 published ports.

Network changes are incremental (render_delta): what belongs to one network is set and map
elements plus its own masquerade chain, so `network create` / `network rm` add or delete those
in one transaction, the same size with 1 or 100 networks, and leave the published-port maps
alone. The ICC rules (networks with enable_icc=false, few) are rewritten in place when they
change; so are the auto-merged `subnets` sets, whose merged intervals cannot lose one member.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from boxnet.firewall.base import BridgeIntent, DnatIntent, FirewallModel

TABLE = "boxnet"
# Map key and value types: (proto, port) or (address, proto, port) -> (container ip, port).
ANY_KEY = "inet_proto . inet_service"
ADDR_KEY = "ipv4_addr . inet_proto . inet_service"
TARGET = "ipv4_addr . inet_service"
ADDR_KEY6 = "ipv6_addr . inet_proto . inet_service"
TARGET6 = "ipv6_addr . inet_service"
MAPS = ("pub_any", "pub_addr", "pub_lo", "pub_any6", "pub_addr6")
OPEN6 = "ipv6_addr . inet_proto . inet_service"  # a published container port, as routed to
# The sets that follow the networks, with their types (rendered in this order).
NET_SETS = (
    ("bridges", "ifname"),
    ("internal", "ifname"),
    ("routed", "ifname"),
    ("same_bridge", "ifname . ifname"),
    ("subnets", "ipv4_addr; flags interval; auto-merge"),
    ("subnets6", "ipv6_addr; flags interval; auto-merge"),
)
MERGED = ("subnets", "subnets6")  # auto-merge: refilled whole when they change
MASQ_MAPS = (("masq4", "ipv4_addr"), ("masq6", "ipv6_addr"))
_NAME_OK = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _q(name: str) -> str:
    """Quote an interface name for nft (names are validated before they get here)."""
    return '"' + name.replace('"', "") + '"'


def masq_chain(bridge: str) -> str:
    """The name of a network's masquerade chain (an nft identifier: never quoted)."""
    return f"masq_{bridge}" if _NAME_OK.fullmatch(bridge) else f"masq_x{bridge.encode().hex()}"


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


def _ip(b: BridgeIntent) -> str:
    """The nft payload keyword of the bridge's subnet family."""
    return "ip" if b.subnet.version == 4 else "ip6"


@dataclass(frozen=True)
class Parts:
    """What the networks of a model put in the tables: set and map elements and chains, each
    keyed by name, so that two models can be compared part by part (render_delta)."""

    sets: dict[str, tuple[str, ...]]  # NET_SETS and MASQ_MAPS -> elements
    chains: dict[str, tuple[str, ...]]  # masq_BRIDGE -> its rules
    icc: tuple[str, ...]  # the bridge table's forward rules


@dataclass(frozen=True)
class _Texts:
    name: str  # quoted
    subnet: str
    chain: str  # masq_BRIDGE
    masq_rule: str


@functools.lru_cache(maxsize=4096)
def _texts(b: BridgeIntent) -> _Texts:
    """A bridge's strings, rendered once: every network change renders the parts of all of
    them, and str() of an address object was most of that (~1 ms at 100 networks)."""
    name, subnet = _q(b.bridge), str(b.subnet)
    rule = f"{_ip(b)} saddr {subnet} oifname != {name} masquerade"
    return _Texts(name, subnet, masq_chain(b.bridge), rule)


def parts_of(bridges: tuple[BridgeIntent, ...]) -> Parts:
    texts = [(b, _texts(b)) for b in bridges]
    names = list(dict.fromkeys(t.name for _b, t in texts))  # dual stack: two per bridge
    sets: dict[str, tuple[str, ...]] = {
        "bridges": tuple(names),
        "internal": tuple(dict.fromkeys(t.name for b, t in texts if b.internal)),
        "routed": tuple(dict.fromkeys(t.name for b, t in texts if b.routed and not b.internal)),
        "same_bridge": tuple(f"{name} . {name}" for name in names),
        "subnets": tuple(sorted({t.subnet for b, t in texts if b.subnet.version == 4})),
        "subnets6": tuple(sorted({t.subnet for b, t in texts if b.subnet.version == 6})),
    }
    chains: dict[str, list[str]] = {}
    masq: dict[str, list[str]] = {"masq4": [], "masq6": []}
    for b, t in texts:
        if b.masquerade and not b.internal:
            chains.setdefault(t.chain, []).append(t.masq_rule)
            masq[f"masq{b.subnet.version}"].append(f"{t.subnet} : jump {t.chain}")
    sets.update((name, tuple(items)) for name, items in masq.items())
    # ICC off: same-subnet traffic between two ports of that bridge is dropped where it is
    # bridged. (`meta ibrname` would be neater but this kernel lacks nft_meta_bridge.)
    icc = tuple(
        f"{_ip(b)} saddr {b.subnet} {_ip(b)} daddr {b.subnet} drop" for b in bridges if not b.icc
    )
    return Parts(sets, {name: tuple(rules) for name, rules in chains.items()}, icc)


def render_ruleset(model: FirewallModel) -> str:
    """The whole of boxnet's tables for `model`, as one nft script (delete + recreate)."""
    return render_tables(parts_of(model.bridges), list(model.dnats))


def render_tables(parts: Parts, dnats: list[DnatIntent] | None) -> str:
    """The tables of `parts` and `dnats`; with dnats None, no element at all (the script's
    shape only: script_shape)."""
    elements = _group_elements(dnats or [])

    def elems(name: str) -> str:
        if dnats is None:
            return ""
        return _set_elements(list(parts.sets[name] if name in parts.sets else elements[name]))

    net_sets = "".join(
        f"\tset {name} {{ type {kind}; {elems(name)} }}\n" for name, kind in NET_SETS
    )
    masq_maps = "".join(
        f"\tmap {name} {{ type {kind} : verdict; flags interval; }}\n" for name, kind in MASQ_MAPS
    )
    # The maps' elements jump to chains: added once the chains exist (same transaction).
    masq_elements = "".join(
        f"add element inet {TABLE} {name} {{ {', '.join(parts.sets[name])} }}\n"
        for name, _kind in MASQ_MAPS
        if parts.sets[name] and dnats is not None
    )
    # Last: a network's chain made by a delta comes after the others, where a whole rebuild
    # puts it too (`nft list` shows chains in the order they were made).
    chains = "".join(
        f"\tchain {name} {{\n" + "".join(f"\t\t{rule}\n" for rule in rules) + "\t}\n"
        for name, rules in parts.chains.items()
    )
    no_icc = "".join(f"\t\t{rule}\n" for rule in parts.icc)
    # `table ip boxnet` is where boxnet < 0.2 kept its rules: gone on the first rebuild.
    return f"""
table ip {TABLE}
delete table ip {TABLE}
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
{net_sets}\tset open6 {{ type {OPEN6}; {elems("open6")} }}
	map pub_any {{ type {ANY_KEY} : {TARGET}; {elems("pub_any")} }}
	map pub_addr {{ type {ADDR_KEY} : {TARGET}; {elems("pub_addr")} }}
	map pub_lo {{ type {ADDR_KEY} : {TARGET}; {elems("pub_lo")} }}
	map pub_any6 {{ type {ANY_KEY} : {TARGET6}; {elems("pub_any6")} }}
	map pub_addr6 {{ type {ADDR_KEY6} : {TARGET6}; {elems("pub_addr6")} }}
{masq_maps}	chain raw_prerouting {{
		type filter hook prerouting priority raw; policy accept;
		ip daddr 127.0.0.0/8 iifname @bridges drop
		ip6 daddr ::1 iifname @bridges drop
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
		ip saddr vmap @masq4
		ip6 saddr vmap @masq6
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		iifname @internal iifname . oifname != @same_bridge drop
		oifname @internal iifname . oifname != @same_bridge drop
		oifname @bridges ct status dnat accept
		iifname != @bridges oifname @routed ip6 daddr . meta l4proto . th dport @open6 accept
		iifname != @bridges oifname @routed meta l4proto ipv6-icmp accept
		oifname @bridges iifname . oifname != @same_bridge drop
	}}
{chains}}}
{masq_elements}table bridge {TABLE}
delete table bridge {TABLE}
table bridge {TABLE} {{
	chain forward {{
		type filter hook forward priority filter; policy accept;
{no_icc}	}}
}}
"""


def render_delta(old: Parts, new: Parts) -> str:
    """One transaction turning the tables of `old` into those of `new` (same published ports):
    chains are made before elements jump to them, and deleted once nothing does."""
    t = f"inet {TABLE}"
    lines = []
    for name, rules in new.chains.items():
        if name not in old.chains:
            lines.append(f"add chain {t} {name}")
        elif old.chains[name] == rules:
            continue
        else:
            lines.append(f"flush chain {t} {name}")
        lines += [f"add rule {t} {name} {rule}" for rule in rules]
    for name, items in new.sets.items():
        before = old.sets[name]
        if name in MERGED:
            if set(before) != set(items):
                lines.append(f"flush set {t} {name}")
                lines += [f"add element {t} {name} {{ {', '.join(items)} }}"] if items else []
            continue
        now, was = set(items), set(before)  # once: per element, 100 networks made it 2 ms
        gone = [x for x in before if x not in now]
        added = [x for x in items if x not in was]
        lines += [f"delete element {t} {name} {{ {', '.join(gone)} }}"] if gone else []
        lines += [f"add element {t} {name} {{ {', '.join(added)} }}"] if added else []
    for name in old.chains.keys() - new.chains.keys():
        lines += [f"flush chain {t} {name}", f"delete chain {t} {name}"]
    if old.icc != new.icc:
        lines.append(f"flush chain bridge {TABLE} forward")
        lines += [f"add rule bridge {TABLE} forward {rule}" for rule in new.icc]
    return "\n".join(lines) + "\n" if lines else ""


def script_shape(script: str) -> dict[str, int]:
    """The shape (`_current_shape`) the tables of a render_tables script have once applied."""
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


def shape_of(parts: Parts) -> dict[str, int]:
    """What `_current_shape` lists once `parts` are applied (whichever way: whole or delta)."""
    return script_shape(render_tables(parts, None))


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
