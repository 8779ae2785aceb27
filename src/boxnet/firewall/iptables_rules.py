"""Pure rendering for the iptables backend: intents -> `iptables-restore --noflush` input.

Chains (Docker's shape, BOXNET names); built-in chains only ever get a jump from boxnet:
  raw    PREROUTING  -j BOXNET-PREROUTING      127/8 arriving on one of our bridges is dropped
  nat    PREROUTING  ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BOXNET
  nat    OUTPUT      -m addrtype --dst-type LOCAL -j BOXNET   (the host's own processes, 127/8 too)
  nat    POSTROUTING -j BOXNET-POSTROUTING     the tutorial's `-s SUBNET ! -o BRIDGE -j MASQUERADE`
  filter FORWARD     -j BOXNET-USER (rule 1: the user's own, created once, never flushed)
                     -j BOXNET-FORWARD (rule 2) -> BOXNET-ISOLATION-STAGE-1 -> ...-STAGE-2

Why the MASQUERADE rules sit one jump below POSTROUTING rather than in it: a rule in a shared
chain can only be told apart from a foreign one by its text, and with `--bridge br0` (a user's
bridge) that text is not ours alone; behind a jump, a rebuild is "flush our chains, re-add",
atomically, without ever deleting a rule we cannot prove is ours.

Loopback publishing: a DNAT for 127.0.0.1 sits in BOXNET with `-d 127.0.0.1/32`, but only the
OUTPUT jump can reach it (PREROUTING excludes 127/8), so it serves the host's processes alone; the
LAN interface keeps route_localnet=0 (only our bridges get 1, and raw drops 127/8 from them).

Hairpin (a container reaching a published port through a host address): there is no userland
proxy, so DNAT rules carry no `! -i BRIDGE` (Docker's form with userland-proxy=false) and
BOXNET-POSTROUTING masquerades DNATed flows coming from our subnets, so replies return through the
host. Same policy as the nftables backend, rule for rule (see nftables.py).

ICC off cannot be done here: this kernel has no br_netfilter, so no iptables table sees frames
bridged between two ports of one bridge. That one policy stays in the small `bridge boxnet`
nftables table (same text as the nftables backend renders), programmed through libnftables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from boxnet.firewall.base import BridgeIntent, DnatIntent, FirewallModel

PREFIX = "BOXNET"
USER_CHAIN = "BOXNET-USER"
NAT_CHAIN = "BOXNET"
POST_CHAIN = "BOXNET-POSTROUTING"
RAW_CHAIN = "BOXNET-PREROUTING"
FWD_CHAIN = "BOXNET-FORWARD"
ISO1 = "BOXNET-ISOLATION-STAGE-1"
ISO2 = "BOXNET-ISOLATION-STAGE-2"
# IPv6 routed mode: one ACCEPT per published container port (its own address), jumped to from
# BOXNET-FORWARD for routed bridges only; changes with every publish, like BOXNET's DNATs.
ROUTED_CHAIN = "BOXNET-ROUTED"
LOOPBACK_NET = "127.0.0.0/8"
# The loopback net per address family: the same rules serve iptables (4) and ip6tables (6).
LOOPBACK = {4: LOOPBACK_NET, 6: "::1/128"}
TABLES = ("raw", "nat", "filter")

# Our chains per table (declaring one in a --noflush restore flushes it: that is the rebuild).
OWN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": (RAW_CHAIN,),
    "nat": (NAT_CHAIN, POST_CHAIN),
    "filter": (FWD_CHAIN, ISO1, ISO2, ROUTED_CHAIN),
}


@dataclass(frozen=True)
class Jump:
    """A rule boxnet keeps in a built-in chain; `top` pins it to that 1-based position."""

    table: str
    chain: str
    spec: str
    top: int | None = None

    @property
    def line(self) -> str:
        return f"-A {self.chain} {self.spec}"


def jumps(family: int = 4) -> tuple[Jump, ...]:
    loopback = LOOPBACK[family]
    return (
        Jump("raw", "PREROUTING", f"-j {RAW_CHAIN}"),
        Jump("nat", "PREROUTING", f"! -d {loopback} -m addrtype --dst-type LOCAL -j {NAT_CHAIN}"),
        Jump("nat", "OUTPUT", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}"),
        Jump("nat", "POSTROUTING", f"-j {POST_CHAIN}"),
        Jump("filter", "FORWARD", f"-j {USER_CHAIN}", top=1),
        Jump("filter", "FORWARD", f"-j {FWD_CHAIN}", top=2),
    )


@dataclass
class TableState:
    chains: set[str] = field(default_factory=set)
    rules: dict[str, list[str]] = field(default_factory=dict)  # chain -> "-A CHAIN ..." lines


SaveState = dict[str, TableState]


def parse_save(text: str) -> SaveState:
    """iptables-save output -> per table: chain names and rule lines in order."""
    state: SaveState = {}
    table: TableState | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = state.setdefault(line[1:], TableState())
        elif table is None or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            table.chains.add(line[1:].split()[0])
        elif line.startswith("-A "):
            chain = line.split()[1]
            table.rules.setdefault(chain, []).append(line)
    return state


def _is_ours(rule: str) -> bool:
    """A rule in a built-in chain is boxnet's when it jumps to a BOXNET chain."""
    words = rule.split()
    return any(
        w in ("-j", "-g") and i + 1 < len(words) and words[i + 1].startswith(PREFIX)
        for i, w in enumerate(words)
    )


def dnat_spec(d: DnatIntent) -> str:
    """The DNAT rule as iptables-save prints it (a specific host address first, then proto)."""
    dst = "" if d.is_any else f"-d {d.host_ip}/{d.host_ip.max_prefixlen} "
    to = f"[{d.container_ip}]" if d.version == 6 else str(d.container_ip)
    return (
        f"{dst}-p {d.proto} -m {d.proto} --dport {d.host_port}"
        f" -j DNAT --to-destination {to}:{d.container_port}"
    )


def routed_spec(d: DnatIntent) -> str:
    """The ACCEPT, in BOXNET-ROUTED, of a published IPv6 container port reached directly."""
    return f"-d {d.container_ip}/128 -p {d.proto} -m {d.proto} --dport {d.container_port} -j ACCEPT"


def _sorted_dnats(dnats: Iterable[DnatIntent]) -> list[DnatIntent]:
    # Specific addresses before "every address", as nftables consults pub_addr before pub_any.
    return sorted(dnats, key=lambda d: d.is_any)


def nat_rules(model: FirewallModel, family: int = 4) -> list[str]:
    lines = [f"-A {NAT_CHAIN} {dnat_spec(d)}" for d in _sorted_dnats(model.dnats)]
    for b in model.bridges:
        if b.internal:
            continue
        lines.append(f"-A {POST_CHAIN} -s {LOOPBACK[family]} -o {b.bridge} -j MASQUERADE")
        lines.append(f"-A {POST_CHAIN} -s {b.subnet} -m conntrack --ctstate DNAT -j MASQUERADE")
        if b.masquerade:
            lines.append(f"-A {POST_CHAIN} -s {b.subnet} ! -o {b.bridge} -j MASQUERADE")
    return lines


def filter_rules(bridges: tuple[BridgeIntent, ...]) -> list[str]:
    # Established flows first (Docker's DOCKER-CT): one conntrack test per packet of a flow
    # instead of the isolation stages, and no verdict changes, since a flow is only established
    # once its first packet passed the rules below (nft_rules.py says the same of its chain).
    lines = [
        f"-A {FWD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {FWD_CHAIN} -j {ISO1}",
    ]
    for b in bridges:
        n = b.bridge
        if not b.internal:
            lines.append(f"-A {FWD_CHAIN} -o {n} -m conntrack --ctstate DNAT -j ACCEPT")
        # Out to the world (internal ones were stopped in stage 1) and within the bridge.
        lines.append(f"-A {FWD_CHAIN} -i {n} -j ACCEPT")
        if b.routed and not b.internal:  # IPv6 routed mode: published ports, and ICMPv6
            lines.append(f"-A {FWD_CHAIN} -o {n} -j {ROUTED_CHAIN}")
            lines.append(f"-A {FWD_CHAIN} -o {n} -p ipv6-icmp -j ACCEPT")
        # Whatever else is routed into the bridge: isolation, no unpublished ports.
        lines.append(f"-A {FWD_CHAIN} -o {n} -j DROP")
    for b in bridges:
        if b.internal:
            lines.append(f"-A {ISO1} -i {b.bridge} ! -o {b.bridge} -j DROP")
            lines.append(f"-A {ISO1} ! -i {b.bridge} -o {b.bridge} -j DROP")
    for b in bridges:
        # DNATed flows (a published port reached from another network) pass, as in nftables.
        lines.append(
            f"-A {ISO1} -i {b.bridge} ! -o {b.bridge} -m conntrack ! --ctstate DNAT -j {ISO2}"
        )
    lines += [f"-A {ISO2} -o {b.bridge} -j DROP" for b in bridges]
    return lines


def raw_rules(bridges: tuple[BridgeIntent, ...], family: int = 4) -> list[str]:
    return [f"-A {RAW_CHAIN} -d {LOOPBACK[family]} -i {b.bridge} -j DROP" for b in bridges]


def _jump_fixes(table: str, current: TableState, family: int) -> tuple[list[str], list[str]]:
    """(deletions, insertions) making our jumps in `table`'s built-in chains exactly jumps()."""
    deletes: list[str] = []
    inserts: list[str] = []
    wanted = [j for j in jumps(family) if j.table == table]
    for chain in dict.fromkeys(j.chain for j in wanted):
        mine = [j for j in wanted if j.chain == chain]
        rules = current.rules.get(chain, [])
        ours = [r for r in rules if _is_ours(r)]
        in_place = [r.split(None, 2)[2] for r in ours] == [j.spec for j in mine] and all(
            j.top is None or (j.top <= len(rules) and rules[j.top - 1] == j.line) for j in mine
        )
        if in_place:
            continue
        deletes += ["-D " + r[3:] for r in ours]
        for j in mine:
            inserts.append(f"-I {chain} {j.top} {j.spec}" if j.top else j.line)
    return deletes, inserts


def family_model(model: FirewallModel, family: int) -> FirewallModel:
    """The part of model for iptables (4) or ip6tables (6): its bridges and DNATs of that family
    (but ::1: the loopback proxy's, see loopback6.py)."""
    bridges = tuple(b for b in model.bridges if b.subnet.version == family)
    return FirewallModel(bridges=bridges, dnats=family_dnats(model.dnats, family))


def family_dnats(dnats: Iterable[DnatIntent], family: int) -> tuple[DnatIntent, ...]:
    return tuple(d for d in dnats if d.version == family and not d.proxied)


def render_rebuild(model: FirewallModel, current: SaveState | None = None, family: int = 4) -> str:
    """One restore input: flush and refill our chains, fix the jumps, create BOXNET-USER once.
    `model` holds one family's intents (family_model): iptables-restore (4) or ip6tables-restore
    (6) reads it.

    `current` is the parsed iptables-save of the host (None: a host without any rules). A chain
    whose rules already read exactly as rendered is left alone (with 300 published ports, a
    `network create` then rewrites the isolation chains, not 300 DNAT rules); empty string when
    everything is in place.
    """
    current = current or {}
    body = {
        "raw": raw_rules(model.bridges, family),
        "nat": nat_rules(model, family),
        "filter": filter_rules(model.bridges)
        + [f"-A {ROUTED_CHAIN} {routed_spec(d)}" for d in model.dnats if d.version == 6],
    }
    out: list[str] = []
    for table in TABLES:
        state = current.get(table, TableState())
        deletes, inserts = _jump_fixes(table, state, family)
        stale = [
            c
            for c in OWN_CHAINS[table]
            if c not in state.chains
            or state.rules.get(c, []) != [x for x in body[table] if x.split()[1] == c]
        ]
        section = [f":{c} - [0:0]" for c in stale]
        if table == "filter" and USER_CHAIN not in state.chains:
            # Created empty (no trailing RETURN: a user's `-A BOXNET-USER ...` must take effect).
            section.append(f":{USER_CHAIN} - [0:0]")
        section += deletes + [x for x in body[table] if x.split()[1] in stale] + inserts
        if section:
            out += [f"*{table}", *section, "COMMIT"]
    return "\n".join(out) + "\n" if out else ""


def render_purge(current: SaveState) -> str:
    """Remove every boxnet chain and jump present in `current`; BOXNET-USER (the user's rules)
    stays, unlinked. Empty string when there is nothing of ours."""
    out: list[str] = []
    for table in sorted(current):
        state = current[table]
        ours = sorted(c for c in state.chains if c.startswith(PREFIX) and c != USER_CHAIN)
        # Every jump to a boxnet chain from a chain that is not ours (built-in or foreign).
        deletes = [
            "-D " + r[3:]
            for chain, rules in sorted(state.rules.items())
            if not chain.startswith(PREFIX)
            for r in rules
            if _is_ours(r)
        ]
        if not ours and not deletes:
            continue
        out.append(f"*{table}")
        out += [f":{c} - [0:0]" for c in ours]
        out += deletes
        out += [f"-X {c}" for c in ours]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


def render_dnat_change(verb: str, dnats: list[DnatIntent]) -> str:
    """Publish (verb "add") or unpublish ("delete") ports: nat rules only, one restore."""
    lines = ["*nat"]
    for d in _sorted_dnats(dnats):
        if verb == "delete":
            lines.append(f"-D {NAT_CHAIN} {dnat_spec(d)}")
        elif d.is_any:
            lines.append(f"-A {NAT_CHAIN} {dnat_spec(d)}")
        else:
            # Specific addresses stay ahead of the "every address" rules.
            lines.append(f"-I {NAT_CHAIN} 1 {dnat_spec(d)}")
    lines.append("COMMIT")
    six = [d for d in dnats if d.version == 6]
    if six:  # routed mode's ACCEPTs go with the DNATs (ip6tables only)
        lines.append("*filter")
        flag = "-D" if verb == "delete" else "-A"
        lines += [f"{flag} {ROUTED_CHAIN} {routed_spec(d)}" for d in six]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def present_dnats(current: SaveState, dnats: list[DnatIntent]) -> list[DnatIntent]:
    have = set(current.get("nat", TableState()).rules.get(NAT_CHAIN, []))
    return [d for d in dnats if f"-A {NAT_CHAIN} {dnat_spec(d)}" in have]


def probe_present(current: SaveState, d: DnatIntent) -> bool:
    """`d`'s DNAT rule is there, and for IPv6 its BOXNET-ROUTED ACCEPT (made with it)."""
    if not present_dnats(current, [d]):
        return False
    routed = current.get("filter", TableState()).rules.get(ROUTED_CHAIN, [])
    return d.version == 4 or f"-A {ROUTED_CHAIN} {routed_spec(d)}" in routed


def missing_pieces(current: SaveState, family: int = 4) -> list[str]:
    """What of boxnet's skeleton is absent (empty: intact)."""
    missing = []
    for table, chains in OWN_CHAINS.items():
        state = current.get(table, TableState())
        missing += [f"{table} chain {c}" for c in chains if c not in state.chains]
    for j in jumps(family):
        if j.line not in current.get(j.table, TableState()).rules.get(j.chain, []):
            missing.append(f"{j.table} {j.line}")
    return missing


def rule_counts(current: SaveState) -> dict[str, int]:
    """Rules in each of boxnet's own chains, except BOXNET (its DNAT rules come and go with
    every publish; is_intact checks one of them instead) and BOXNET-USER (the user's)."""
    return {
        f"{table} {chain}": len(current.get(table, TableState()).rules.get(chain, []))
        for table, chains in OWN_CHAINS.items()
        for chain in chains
        if chain not in (USER_CHAIN, ROUTED_CHAIN) and not (table == "nat" and chain == NAT_CHAIN)
    }


def render_icc(bridges: tuple[BridgeIntent, ...]) -> str:
    """The `bridge boxnet` nftables table: ICC off is enforced where frames are bridged."""
    drops = "".join(
        f"\t\t{ip} saddr {b.subnet} {ip} daddr {b.subnet} drop\n"
        for b in bridges
        if not b.icc
        for ip in ["ip" if b.subnet.version == 4 else "ip6"]
    )
    return (
        "table bridge boxnet\ndelete table bridge boxnet\ntable bridge boxnet {\n"
        "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
        f"{drops}\t}}\n}}\n"
    )
