"""The text of the rule a backend programmed for each of explain's neutral rule keys.

`explain.py` decides with backend-neutral keys ("isolation", "dnat", ...); this module gives the
line as the active backend wrote it (the same strings its pure renderer emits; the unit tests
check each one is a line of the rendered ruleset), prefixed with where it lives.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxnet.firewall import iptables_rules as ipt
from boxnet.firewall.base import DnatIntent
from boxnet.firewall.nft_rules import masq_chain


@dataclass(frozen=True)
class Rule:
    """One of boxnet's rules met by the packet. `key` is neutral; the others are parameters."""

    key: str
    bridge: str = ""  # the bridge the rule names (out, or in)
    other: str = ""  # a second bridge (isolation: the input bridge, "" when from outside)
    subnet: str = ""
    dnat: DnatIntent | None = None
    family: int = 4  # the question's (explain sets it): ip or ip6 texts, iptables or ip6tables
    port: int = 0  # routed_open: the container's published port
    proto: str = ""


_LOOPBACK_NFT = {4: "127.0.0.0/8", 6: "::1"}


def _q(name: str) -> str:
    return f'"{name}"'


def nftables(rule: Rule) -> str:
    k = rule.key
    fwd = "table inet boxnet chain forward: "
    ip = "ip6" if rule.family == 6 else "ip"
    if k == "internal_in":
        return fwd + "iifname @internal iifname . oifname != @same_bridge drop"
    if k == "internal_out":
        return fwd + "oifname @internal iifname . oifname != @same_bridge drop"
    if k == "dnat_accept":
        return fwd + "oifname @bridges ct status dnat accept"
    if k == "isolation":
        return fwd + "oifname @bridges iifname . oifname != @same_bridge drop"
    if k == "out_accept":
        return fwd + "policy accept (nothing of boxnet's matches traffic leaving a bridge)"
    if k == "routed_icmp":
        return fwd + "iifname != @bridges oifname @routed meta l4proto ipv6-icmp accept"
    if k == "routed_open":
        return (
            fwd + "iifname != @bridges oifname @routed"
            " ip6 daddr . meta l4proto . th dport @open6 accept;"
            f" element open6 {{ {rule.subnet} . {rule.proto} . {rule.port} }}"
        )
    if k == "icc":
        return (
            f"table bridge boxnet chain forward: {ip} saddr {rule.subnet}"
            f" {ip} daddr {rule.subnet} drop"
        )
    if k == "dnat" and rule.dnat is not None:
        d = rule.dnat
        six = "6" if d.version == 6 else ""
        value = f"{d.container_ip} . {d.container_port}"
        if d.is_any:
            where, elem = "publish", f"pub_any{six} {{ {d.proto} . {d.host_port} : {value} }}"
            text = f"meta nfproto ipv{d.version} dnat {ip} to meta l4proto . th dport map"
            text += f" @pub_any{six}"
        else:
            m = "pub_lo" if d.is_loopback else f"pub_addr{six}"
            where = "publish_local" if d.is_loopback else "publish"
            elem = f"{m} {{ {d.host_ip} . {d.proto} . {d.host_port} : {value} }}"
            text = f"dnat {ip} to {ip} daddr . meta l4proto . th dport map @{m}"
        return f"table inet boxnet chain {where}: {text}; element {elem}"
    if k == "masq":
        return (
            f"table inet boxnet chain {masq_chain(rule.bridge)}: "
            f"{'ip6' if ':' in rule.subnet else 'ip'} saddr {rule.subnet}"
            f" oifname != {_q(rule.bridge)} masquerade"
        )
    if k == "masq_dnat":
        return (
            "table inet boxnet chain nat_postrouting: "
            f"oifname @bridges ct status dnat {ip} saddr @subnets{'6' if ip == 'ip6' else ''}"
            " masquerade"
        )
    if k == "masq_lo":
        return (
            "table inet boxnet chain nat_postrouting: "
            "oifname @bridges ip saddr 127.0.0.0/8 masquerade"
        )
    if k == "loopback_prerouting":
        return (
            "table inet boxnet chain nat_prerouting: "
            f"{ip} daddr != {_LOOPBACK_NFT[rule.family]} fib daddr type local jump publish"
        )
    if k == "loopback_raw":
        return (
            "table inet boxnet chain raw_prerouting: "
            f"{ip} daddr {_LOOPBACK_NFT[rule.family]} iifname @bridges drop"
        )
    raise ValueError(f"no nftables text for {rule}")


def iptables(rule: Rule) -> str:
    """The rule as `iptables -S` (or, IPv6, `ip6tables -S`: that prefix) lists it."""
    text = _iptables(rule)
    return f"ip6tables {text}" if rule.family == 6 and rule.key != "icc" else text


def _iptables(rule: Rule) -> str:
    k, b = rule.key, rule.bridge
    lo = ipt.LOOPBACK[rule.family]
    if k == "internal_in":
        return f"-t filter -A {ipt.ISO1} -i {b} ! -o {b} -j DROP"
    if k == "internal_out":
        return f"-t filter -A {ipt.ISO1} ! -i {b} -o {b} -j DROP"
    if k == "dnat_accept":
        return f"-t filter -A {ipt.FWD_CHAIN} -o {b} -m conntrack --ctstate DNAT -j ACCEPT"
    if k == "isolation":
        if rule.other:  # from another of our bridges: stage 2 of the isolation chains
            return f"-t filter -A {ipt.ISO2} -o {b} -j DROP"
        return f"-t filter -A {ipt.FWD_CHAIN} -o {b} -j DROP"
    if k == "out_accept":
        return f"-t filter -A {ipt.FWD_CHAIN} -i {b} -j ACCEPT"
    if k == "dnat" and rule.dnat is not None:
        return f"-t nat -A {ipt.NAT_CHAIN} {ipt.dnat_spec(rule.dnat)}"
    if k == "masq":
        return f"-t nat -A {ipt.POST_CHAIN} -s {rule.subnet} ! -o {b} -j MASQUERADE"
    if k == "masq_dnat":
        return (
            f"-t nat -A {ipt.POST_CHAIN} -s {rule.subnet} -m conntrack --ctstate DNAT -j MASQUERADE"
        )
    if k == "masq_lo":
        return f"-t nat -A {ipt.POST_CHAIN} -s {lo} -o {b} -j MASQUERADE"
    if k == "loopback_prerouting":
        return f"-t nat -A PREROUTING ! -d {lo} -m addrtype --dst-type LOCAL -j {ipt.NAT_CHAIN}"
    if k == "loopback_raw":
        return f"-t raw -A {ipt.RAW_CHAIN} -d {lo} -i {b} -j DROP"
    if k == "routed_icmp":
        return f"-t filter -A {ipt.FWD_CHAIN} -o {b} -p ipv6-icmp -j ACCEPT"
    if k == "routed_open":
        return (
            f"-t filter -A {ipt.ROUTED_CHAIN} -d {rule.subnet}/128 -p {rule.proto} -m {rule.proto}"
            f" --dport {rule.port} -j ACCEPT"
        )
    if k == "icc":  # ICC lives in the small nftables bridge table on both backends
        return nftables(rule)
    raise ValueError(f"no iptables text for {rule}")


def text(backend: str, rule: Rule) -> str:
    if backend == "iptables":
        return iptables(rule)
    if backend == "nftables":
        return nftables(rule)
    return "(no firewall: boxnetd runs with --iptables=false)"
