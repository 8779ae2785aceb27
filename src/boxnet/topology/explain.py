"""`boxnet explain SRC DST[:PORT][/PROTO]`: does boxnet let this packet through, and why.

A pure evaluator over the records and the backend-neutral firewall intents, walking the path a
packet takes through the host (route, bridge, nat prerouting/output, forward, postrouting) in the
order the backends' rules meet it (firewall/nftables.py and iptables_rules.py have the same policy,
rule for rule). Each rule met is reported with the text the active backend programmed
(`rules_text`) and the reason it exists.

One question is of one address family: IPv6 when SRC or DST is an IPv6 address (or the caller
asks, `explain -6`), else IPv4. The walk is the same for both; what differs is each network's
addressing and firewall view (`Net.of`: IPv6 routed mode has no masquerade, and lets published
container ports in), the rule texts, and [::1], served by boxnetd's relay rather than a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from ipaddress import ip_address

from boxnet.errors import InvalidArgument, NotFound
from boxnet.firewall.base import ANY, DnatIntent
from boxnet.model import Container, Endpoint, Network, State
from boxnet.topology import rules_text
from boxnet.topology.explain_types import (
    IP,
    REASONS,
    Explanation,
    Net,
    Party,
    Scene,
    Step,
    family_of_question,
    hostport,
    is_loopback,
    parse_target,
)
from boxnet.topology.rules_text import Rule

__all__ = ["Evaluator", "Explanation", "Scene", "parse_target", "reach_matrix"]


class Evaluator:
    def __init__(self, scene: Scene, family: int = 4) -> None:
        self.s = scene
        self.family = family
        self.nets = {n.id: Net.of(n, family, scene.firewall) for n in scene.networks}
        self.by_ip: dict[IP, tuple[Container, Net]] = {}
        self.eps: dict[str, list[tuple[Endpoint, Net]]] = {}
        containers = {c.id: c for c in scene.containers}
        for e in scene.endpoints:
            net = self.nets.get(e.network_id)
            c = containers.get(e.container_id)
            if net is None or c is None or c.state != State.RUNNING:
                continue
            self.eps.setdefault(c.id, []).append((e, net))
            for a in (e.interface4, e.interface6):
                if a is not None:
                    self.by_ip[a.ip] = (c, Net.of(self._network(e.network_id), a.version,
                                                  scene.firewall))  # fmt: skip
        self.local = {a.ip for a in scene.host_addresses}

    def _network(self, net_id: str) -> Network:
        return next(n for n in self.s.networks if n.id == net_id)

    def addr(self, e: Endpoint) -> IP | None:
        """The endpoint's address of the question's family."""
        found = e.interface4 if self.family == 4 else e.interface6
        return found.ip if found is not None else None

    # -- parties ---------------------------------------------------------------------------------
    def party(self, text: str) -> Party:
        if text == "host":
            return Party("host", "host", None)
        try:
            ip = ip_address(text)
        except ValueError:
            return self._container(text)
        if ip in self.by_ip:
            c, _net = self.by_ip[ip]
            return Party("container", c.name, ip, c)
        if ip in self.local or is_loopback(ip):
            return Party("host", str(ip), ip)
        return Party("outside", str(ip), ip)

    def _container(self, ref: str) -> Party:
        # Docker's order: a name or a whole id, else an id prefix that names one container only
        # (a name like "b1" is also an id prefix of any container whose id starts with b1).
        found = [c for c in self.s.containers if ref in (c.name, c.id)]
        if not found:
            found = [c for c in self.s.containers if c.id.startswith(ref)]
            if len(found) > 1:
                raise InvalidArgument(f"multiple containers match {ref}: use more of the id")
        if not found:
            raise NotFound(
                f"no container, address or 'host' called {ref!r}",
                hint="SRC and DST are container names, 'host' or IP addresses",
            )
        c = found[0]
        if c.spec.network_mode == "host":
            return Party("host", c.name, None, c)
        if c.state != State.RUNNING:
            raise InvalidArgument(f"container {c.name} is not running", hint="start it first")
        return Party("container", c.name, None, c)

    def bridge_eps(self, c: Container) -> list[tuple[Endpoint, Net]]:
        return [(e, n) for e, n in self.eps.get(c.id, []) if n.driver == "bridge"]

    # -- the walk --------------------------------------------------------------------------------
    def explain(self, src_text: str, target: str, family: int | None = None) -> Explanation:
        dst_text, port, proto = parse_target(target)
        wanted = family_of_question(src_text, dst_text, family) or self._implied(src_text, dst_text)
        if wanted != self.family:
            return Evaluator(self.s, wanted).explain(src_text, target, wanted)
        src, dst = self.party(src_text), self.party(dst_text)
        ex = Explanation(src.name, dst.name, port, proto)
        walk = {"container": self._from_container, "host": self._from_host}
        walk.get(src.kind, self._from_outside)(ex, src, dst)
        return ex

    def _implied(self, *names: str) -> int:
        """6 when a container named has IPv6 and no IPv4 at all (--ipv4=false), else 4."""
        for c in self.s.containers:
            eps = [e for e, _n in self.eps.get(c.id, [])] if c.name in names else []
            if eps and not any(e.interface4 for e in eps) and any(e.interface6 for e in eps):
                return 6
        return 4

    def rule(self, ex: Explanation, stage: str, text: str, rule: Rule) -> None:
        ex.steps.append(
            Step(
                stage,
                text,
                rules_text.text(self.s.backend, replace(rule, family=self.family)),
                REASONS.get(rule.key, ""),
            )
        )

    def note(self, ex: Explanation, stage: str, text: str) -> None:
        ex.steps.append(Step(stage, text))

    def verdict(self, ex: Explanation, allowed: bool, text: str) -> None:
        ex.allowed = allowed
        ex.steps.append(Step("verdict", text))

    def _dst_ip(self, dst: Party, near: list[tuple[Endpoint, Net]]) -> IP | None:
        if dst.ip is not None:
            return dst.ip
        if dst.kind == "container" and dst.container is not None:
            theirs = [(e, n) for e, n in self.eps.get(dst.container.id, []) if self.addr(e)]
            shared = [e for e, n in theirs if any(n.id == m.id for _x, m in near)]
            if shared:
                return self.addr(shared[0])
            return self.addr(theirs[0][0]) if theirs else None
        # "host": the gateway of the source's own network, else the host's first address
        for _e, n in near:
            if n.gateway is not None:
                return n.gateway
        return next(
            (a.ip for a in self.s.host_addresses
             if a.version == self.family and not is_loopback(a.ip)),
            None,
        )  # fmt: skip

    def _from_container(self, ex: Explanation, src: Party, dst: Party) -> None:
        assert src.container is not None
        eps = [(e, n) for e, n in self.bridge_eps(src.container) if self.addr(e) is not None]
        if not eps:
            what = "IPv6 " if self.family == 6 and self.bridge_eps(src.container) else ""
            self.verdict(ex, False, f"{src.name} has no {what}bridge network address to send from")
            return
        dip = self._dst_ip(dst, eps)
        if dip is None:
            self.verdict(ex, False, f"{dst.name} has no address")
            return
        ex.dst_ip = str(dip)
        for e, n in eps:
            if n.subnet is not None and dip in n.subnet:
                ex.src_ip = str(self.addr(e))
                self.note(ex, "route", f"{dip} is on {n.name} ({n.subnet}): out {e.ifname}")
                self._on_bridge(ex, n, dip, dst)
                return
        if is_loopback(dip):
            self.note(ex, "route", f"{dip} is the container's own loopback")
            self.verdict(ex, True, "the packet never leaves the container's namespace")
            return
        gw = next(((e, n) for e, n in eps if not n.internal and n.gateway is not None), None)
        if gw is None:
            e, n = eps[0]
            ex.src_ip = str(self.addr(e))
            self.note(ex, "route", f"{src.name} has no default route: {n.name} is internal")
            self.verdict(ex, False, "blocked: an internal network has no way out (no route)")
            return
        e, n = gw
        ex.src_ip = str(self.addr(e))
        self.note(ex, "route", f"default route via {n.gateway} on bridge {n.bridge}")
        if dip in self.local or self._is_gateway(dip):
            self._to_host_address(ex, dip, in_net=n, local=False)
        elif dip in self.by_ip:
            _c, out = self.by_ip[dip]
            if self._forward(ex, n, out, dnat=False):
                self.verdict(ex, True, "allowed")
        elif self._forward(ex, n, None, dnat=False):
            self._masquerade(ex, n)
            self.verdict(ex, True, "allowed: routed out of the host")

    def _is_gateway(self, ip: IP) -> bool:
        return any(n.gateway == ip for n in self.nets.values() if n.driver == "bridge")

    def _on_bridge(self, ex: Explanation, n: Net, dip: IP, dst: Party) -> None:
        self.note(ex, "bridge", f"switched on bridge {n.bridge}, not routed")
        if dip == n.gateway:
            self.note(ex, "input", f"{dip} is the host's address on {n.bridge}")
            self._to_host_address(ex, dip, in_net=n, local=False, same_bridge=True)
            return
        if dip not in self.by_ip:
            self.verdict(ex, False, f"no running container has {dip}")
            return
        if not n.icc and self.s.backend != "none":
            rule = Rule("icc", n.bridge or "", subnet=str(n.subnet))
            self.rule(ex, "bridge", "bridge-level filter between two ports", rule)
            self.verdict(ex, False, f"blocked: ICC is off on {n.name}")
            return
        name = self.by_ip[dip][0].name
        self.verdict(ex, True, f"allowed: {name} is on the same network ({n.name})")

    def _lookup_dnat(self, ip: IP, port: int | None, proto: str, local: bool) -> DnatIntent | None:
        if port is None or proto == "icmp" or self.s.backend == "none":
            return None
        tried = []
        if local:
            tried.append(lambda d: d.is_loopback and d.host_ip == ip)
        tried.append(lambda d: not d.is_loopback and d.host_ip == ip)
        tried.append(lambda d: d.host_ip in ANY)
        for match in tried:
            for d in self.s.firewall.dnats:
                # a binding of the other family never answers (no proxy carries it over)
                if (
                    d.version == ip.version
                    and d.proto == proto
                    and d.host_port == port
                    and match(d)
                ):
                    return d
        return None

    def _to_host_address(
        self, ex: Explanation, dip: IP, in_net: Net | None, local: bool,
        same_bridge: bool = False,
    ) -> None:  # fmt: skip
        d = self._lookup_dnat(dip, ex.port, ex.proto, local)
        if d is None:
            where = "the host's own processes" if local else "the host itself"
            lo = self._loopback_only(ex, dip) if not local else None
            if lo is not None:
                self.rule(ex, "nat", f"{lo.host_ip}:{lo.host_port} is published on loopback only",
                          Rule("loopback_prerouting"))  # fmt: skip
                self.verdict(ex, False, "blocked: loopback protection (nothing else listens)")
                return
            self.note(ex, "input", f"{dip} is local and no published port matches: to {where}")
            self.verdict(ex, True, "allowed: delivered to the host (boxnet filters no input)")
            return
        to = hostport(d.container_ip, d.container_port)
        if d.proxied:  # [::1]: a socket of boxnetd's relays it, no rule
            self.note(ex, "input", f"{hostport(dip, d.host_port)} is boxnetd's loopback relay")
            ex.steps[-1] = Step("input", ex.steps[-1].text, "", REASONS["proxy6"])
            ex.nat.append(f"RELAY {hostport(dip, d.host_port)} -> {to}")
        else:
            self.rule(ex, "nat", f"DNAT to {to}", Rule("dnat", dnat=d))
            ex.nat.append(f"DNAT {hostport(dip, d.host_port)} -> {to}")
        target = self.by_ip.get(d.container_ip)
        if target is None:
            self.verdict(ex, False, f"nothing runs at {d.container_ip} any more")
            return
        out = target[1]
        if local:
            self.note(ex, "route", f"the host sends straight out of {out.bridge} (no forward)")
            if (
                is_loopback(dip) and not d.proxied
            ):  # the source is 127.0.0.1 too: replies need a real address
                self.rule(ex, "postrouting", "masquerade", Rule("masq_lo", out.bridge or ""))
                ex.nat.append(f"MASQUERADE 127.0.0.1 -> {out.gateway}")
            self.verdict(ex, True, f"allowed: published port to {target[0].name}")
            return
        if not self._forward(ex, in_net, out, dnat=True):
            return
        if in_net is not None and in_net.subnet is not None:
            rule = Rule("masq_dnat", out.bridge or "", subnet=str(in_net.subnet))
            self.rule(ex, "postrouting", "masquerade (hairpin)", rule)
            ex.nat.append(f"MASQUERADE {ex.src_ip} -> {out.gateway}")
        self.verdict(ex, True, f"allowed: published port to {target[0].name}")

    def _loopback_only(self, ex: Explanation, dip: IP) -> DnatIntent | None:
        return next(
            (d for d in self.s.firewall.dnats
             if d.is_loopback and d.host_port == ex.port and d.proto == ex.proto
             and d.version == dip.version),
            None,
        )  # fmt: skip

    def _forward(self, ex: Explanation, in_net: Net | None, out: Net | None, dnat: bool) -> bool:
        """The forward chain, in the backends' order; False (verdict given) when dropped."""
        if self.s.backend == "none":
            self.note(ex, "forward", "no firewall (boxnetd --iptables=false): forwarded")
            return True
        ib = in_net.bridge if in_net is not None else ""
        ob = out.bridge if out is not None else ""
        if ib and ib == ob:
            self.note(ex, "forward", f"in and out of {ib}: same bridge")
            return True
        if in_net is not None and in_net.internal:
            self.rule(ex, "forward", f"from internal {in_net.name}", Rule("internal_in", ib or ""))
            self.verdict(ex, False, f"blocked: {in_net.name} is internal")
            return False
        if out is not None and out.internal:
            self.rule(ex, "forward", f"into internal {out.name}", Rule("internal_out", ob or ""))
            self.verdict(ex, False, f"blocked: {out.name} is internal")
            return False
        if out is None:
            self.rule(ex, "forward", f"out of {ib} to the world", Rule("out_accept", ib or ""))
            return True
        if dnat:
            self.rule(ex, "forward", f"into {ob}, DNATed", Rule("dnat_accept", ob or ""))
            return True
        if out.routed and in_net is None and self._routed_open(ex, out.bridge or ""):
            # (routed from outside only: another of our networks stays isolated)
            return True
        self.rule(ex, "forward", f"routed into {ob} from {ib or 'outside'}",
                  Rule("isolation", ob or "", other=ib or ""))  # fmt: skip
        why = f"{in_net.name} and {out.name} are isolated" if in_net else "not a published port"
        self.verdict(ex, False, f"blocked: {why}")
        return False

    def _routed_open(self, ex: Explanation, bridge: str) -> bool:
        """IPv6 routed mode: ICMPv6, and published container ports at their own address."""
        if ex.proto == "icmp":
            self.rule(ex, "forward", "ICMPv6 into a routed network", Rule("routed_icmp", bridge))
            return True
        dip = ip_address(ex.dst_ip)
        if any(
            d.container_ip == dip and d.container_port == ex.port and d.proto == ex.proto
            for d in self.s.firewall.dnats
        ):
            hit = Rule("routed_open", bridge, subnet=str(dip), port=ex.port or 0, proto=ex.proto)
            self.rule(ex, "forward", f"a published port of {dip}, routed", hit)
            return True
        return False

    def _masquerade(self, ex: Explanation, n: Net) -> None:
        if n.masquerade and self.s.backend != "none":
            rule = Rule("masq", n.bridge or "", subnet=str(n.subnet))
            self.rule(ex, "postrouting", "masquerade", rule)
            ex.nat.append(f"MASQUERADE {ex.src_ip} -> the host's address")

    def _from_host(self, ex: Explanation, src: Party, dst: Party) -> None:
        dip = self._dst_ip(dst, [])
        if dip is None:
            self.verdict(ex, False, f"{dst.name} has no address")
            return
        ex.dst_ip = str(dip)
        if dip in self.local or is_loopback(dip) or self._is_gateway(dip):
            ex.src_ip = (
                str(dip) if not is_loopback(dip) else ("::1" if dip.version == 6 else "127.0.0.1")
            )
            self.note(ex, "route", f"{dip} is local: nat output")
            self._to_host_address(ex, dip, in_net=None, local=True)
            return
        if dip in self.by_ip:
            c, n = self.by_ip[dip]
            ex.src_ip = str(n.gateway or "")
            self.note(ex, "route", f"{n.subnet} is on {n.bridge}: the host sends out of it")
            self.verdict(ex, True, f"allowed: the host reaches {c.name} (its own traffic is "
                                   "not forwarded)")  # fmt: skip
            return
        self.verdict(ex, True, "allowed: not boxnet's traffic (host to outside)")

    def _from_outside(self, ex: Explanation, src: Party, dst: Party) -> None:
        ex.src_ip = str(src.ip)
        dip = self._dst_ip(dst, [])
        if dip is None:
            self.verdict(ex, False, f"{dst.name} has no address")
            return
        ex.dst_ip = str(dip)
        if is_loopback(dip):
            self.rule(ex, "nat", f"{dip} from another host", Rule("loopback_prerouting"))
            self.verdict(ex, False, "blocked: loopback protection (and the kernel drops martians)")
            return
        if dip in self.local or self._is_gateway(dip):
            self.note(ex, "route", f"{dip} is one of the host's addresses: nat prerouting")
            self._to_host_address(ex, dip, in_net=None, local=False)
            return
        if dip in self.by_ip:
            _c, out = self.by_ip[dip]
            self.note(ex, "route", f"routed straight to {dip} on {out.bridge}")
            if self._forward(ex, None, out, dnat=False):
                self.verdict(ex, True, f"allowed: {_c.name} is routed to, not NATed (IPv6 routed)")
            return
        self.verdict(ex, False, f"{dip} is neither the host's nor a container's")


def reach_matrix(ev: Evaluator, names: Sequence[str]) -> dict[str, dict[str, bool]]:
    """Who may ping whom, as boxnet's rules allow it (the page's matrix)."""
    return {a: {b: ev.explain(a, b).allowed for b in names if b != a} for a in names}
