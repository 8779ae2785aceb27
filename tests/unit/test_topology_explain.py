"""explain's evaluator over the firewall intents, and the rule texts it quotes (both backends)."""

from __future__ import annotations

import pytest
from topology_scene import HOST_IP, OUTSIDE_IP, ip_of, recorded, scene

from boxnet.errors import InvalidArgument, NotFound
from boxnet.firewall import iptables_rules, nftables
from boxnet.topology import rules_text
from boxnet.topology.explain import Evaluator, Explanation, parse_target

BACKENDS = ("nftables", "iptables")


def explain(src: str, dst: str, backend: str = "nftables") -> Explanation:
    return Evaluator(scene(backend)).explain(src, dst)


def rules(ex: Explanation) -> list[str]:
    return [s.rule for s in ex.steps if s.rule]


def reasons(ex: Explanation) -> str:
    return " | ".join(s.reason for s in ex.steps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_network_passes_without_any_rule(backend: str) -> None:
    ex = explain("a1", "a2", backend)
    assert ex.allowed and rules(ex) == []
    assert (ex.src_ip, ex.dst_ip) == (ip_of("a1"), ip_of("a2"))
    assert any("switched on bridge br-net1" in s.text for s in ex.steps)


def test_two_user_networks_are_isolated() -> None:
    nft, ipt = explain("a1", "b1", "nftables"), explain("a1", "b1", "iptables")
    assert not nft.allowed and not ipt.allowed
    assert rules(nft)[-1].endswith("oifname @bridges iifname . oifname != @same_bridge drop")
    assert rules(ipt)[-1] == "-t filter -A BOXNET-ISOLATION-STAGE-2 -o br-net2 -j DROP"
    assert "isolation" in reasons(nft)


@pytest.mark.parametrize("backend", BACKENDS)
def test_internal_network_neither_leaves_nor_is_entered(backend: str) -> None:
    out = explain("i1", OUTSIDE_IP, backend)
    assert not out.allowed and "no route" in out.steps[-1].text
    into = explain("a1", "i1", backend)
    assert not into.allowed and "internal" in reasons(into)
    assert explain("i1", "172.22.0.1", backend).allowed  # its bridge address is there


def test_published_port_from_outside_is_dnated() -> None:
    ex = explain(OUTSIDE_IP, f"{HOST_IP}:8080")
    assert ex.allowed
    assert ex.nat == [f"DNAT {HOST_IP}:8080 -> {ip_of('d1')}:80"]
    assert "pub_any { tcp . 8080 : 172.17.0.2 . 80 }" in rules(ex)[0]
    ipt = explain(OUTSIDE_IP, f"{HOST_IP}:8080", "iptables")
    assert (
        rules(ipt)[0]
        == "-t nat -A BOXNET -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
    )
    assert (
        rules(ipt)[1]
        == "-t filter -A BOXNET-FORWARD -o boxnet0 -m conntrack --ctstate DNAT -j ACCEPT"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_loopback_published_port_is_for_the_host_alone(backend: str) -> None:
    lan = explain(OUTSIDE_IP, f"{HOST_IP}:8090", backend)
    assert not lan.allowed and "loopback protection" in reasons(lan)
    host = explain("host", "127.0.0.1:8090", backend)
    assert host.allowed and host.nat[0] == "DNAT 127.0.0.1:8090 -> 172.17.0.2:80"
    assert "loopback protection" in reasons(explain(OUTSIDE_IP, "127.0.0.1:8090", backend))


def test_icc_off_blocks_its_own_members() -> None:
    ex = explain("q1", "q2")
    assert not ex.allowed and "ICC" in ex.steps[-1].text
    assert rules(ex) == [
        "table bridge boxnet chain forward: ip saddr 172.23.0.0/16 ip daddr 172.23.0.0/16 drop"
    ]


def test_outside_cannot_reach_an_unpublished_container_directly() -> None:
    ex = explain(OUTSIDE_IP, "a1", "iptables")
    assert not ex.allowed and rules(ex) == ["-t filter -A BOXNET-FORWARD -o br-net1 -j DROP"]


def test_a_container_reaches_the_world_masqueraded() -> None:
    ex = explain("a1", OUTSIDE_IP)
    assert ex.allowed and ex.nat == [f"MASQUERADE {ip_of('a1')} -> the host's address"]


def test_hairpin_to_a_published_port_from_another_network() -> None:
    ex = explain("a1", f"{HOST_IP}:8080")
    assert ex.allowed and "hairpin" in reasons(ex)


def test_udp_port_and_wrong_protocol() -> None:
    assert explain(OUTSIDE_IP, f"{HOST_IP}:5353/udp").allowed
    tcp = explain(OUTSIDE_IP, f"{HOST_IP}:5353/tcp")  # not published over tcp: the host itself
    assert tcp.nat == [] and "delivered to the host" in tcp.steps[-1].text


def test_no_firewall_forwards_everything() -> None:
    assert explain("a1", "b1", "none").allowed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web", ("web", None, "icmp")),
        ("web:80", ("web", 80, "tcp")),
        ("10.0.0.1:53/udp", ("10.0.0.1", 53, "udp")),
        ("2001:db8::2", ("2001:db8::2", None, "icmp")),
        ("[2001:db8::2]:8080", ("2001:db8::2", 8080, "tcp")),
        ("[::1]:53/udp", ("::1", 53, "udp")),
        ("[2001:db8::2]", ("2001:db8::2", None, "icmp")),
    ],
)
def test_parse_target(text: str, expected: tuple[str, int | None, str]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text",
    ["web:0", "web:http", "web/sctp", ":80", "web:80/icmp", "web/tcp", "[web]:80",
     "[2001:db8::2:80", "[2001:db8::2]80", "2001:db8::2/tcp"],
)  # fmt: skip
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_target(text)
    assert err.value.hint


def test_one_question_is_of_one_family() -> None:
    with pytest.raises(InvalidArgument, match="not of one address family"):
        explain("2001:db8::9", f"{HOST_IP}:8080")
    with pytest.raises(InvalidArgument, match="not of one address family"):
        Evaluator(scene()).explain("a1", OUTSIDE_IP, 6)
    # IPv4-only containers asked about over IPv6: no address to send from, said so
    ex = Evaluator(scene()).explain("a1", "a2", 6)
    assert not ex.allowed and "no IPv6 bridge network address" in ex.steps[-1].text


def test_unknown_names_say_what_is_accepted() -> None:
    with pytest.raises(NotFound, match="no container, address or 'host' called 'nope'"):
        explain("nope", "a1")


def _every_rule(ex_rules: list[str], backend: str) -> list[str]:
    """The bare rule text of explain's lines, without the 'where' prefix."""
    del backend  # ICC is an nftables bridge-table rule on both backends
    return [
        r.split(": ", 1)[1].split("; element ")[0] if r.startswith("table ") else r.split(" ", 2)[2]
        for r in ex_rules
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_quoted_rule_is_one_the_backend_renders(backend: str) -> None:
    rec = recorded()
    assert rec.firewall is not None
    if backend == "nftables":
        rendered = {line.strip() for line in nftables.render_ruleset(rec.firewall).splitlines()}
    else:
        rendered = set(iptables_rules.render_rebuild(rec.firewall).splitlines())
        rendered |= {f"-A {j.chain} {j.spec}" for j in iptables_rules.jumps(4)}
        rendered |= {line.strip() for line in nftables.render_ruleset(rec.firewall).splitlines()}
    cases = [("a1", "b1"), ("a1", "i1"), ("i1", "a1"), (OUTSIDE_IP, f"{HOST_IP}:8080"),
             (OUTSIDE_IP, f"{HOST_IP}:8090"), ("host", "127.0.0.1:8090"), ("q1", "q2"),
             ("a1", OUTSIDE_IP), ("a1", f"{HOST_IP}:8080"), (OUTSIDE_IP, "a1")]  # fmt: skip
    seen = set()
    for src, dst in cases:
        ex = explain(src, dst, backend)
        for rule in _every_rule(rules(ex), backend):
            seen.add(rule)
            if "policy accept" in rule:
                continue
            assert rule in rendered, f"{src} -> {dst}: {rule!r} is not rendered by {backend}"
    assert len(seen) >= 8


def test_rule_text_of_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError):
        rules_text.nftables(rules_text.Rule("nonsense"))


DROP = (
    "ip boxnet forward rule oifname @bridges iifname . oifname != @same_bridge drop (verdict drop)"
)


def test_probe_summary_of_a_kernel_trace() -> None:
    from boxnet.topology.probe import summarize

    lines = [
        'ip boxnet-trace pre packet: iif "br-a" ether saddr 02:42 ip saddr 172.18.0.2',
        "ip boxnet-trace pre unknown rule handle 3 (verdict continue)",
        'ip boxnet forward packet: iif "br-a" oif "br-b" ether saddr 02:42 ip saddr 172.18.0.2',
        DROP,
    ]
    blocked = summarize(lines, explained=False, legacy=False)
    assert blocked["Verdict"] == "blocked" and blocked["Agrees"] is True
    assert blocked["Trace"] == [
        "ip boxnet forward: iif br-a oif br-b",
        DROP,
    ]
    disagree = summarize(lines[:3], explained=False, legacy=False)
    assert disagree["Verdict"] == "allowed" and disagree["Agrees"] is False
    assert "explain disagrees" in disagree["Summary"] and disagree["Note"] == ""
    legacy = summarize(lines[:3], explained=False, legacy=True)
    assert legacy["Verdict"] == "unknown" and legacy["Agrees"] is None
    assert "iptables-legacy" in legacy["Note"]
    assert summarize([], explained=True, legacy=False)["Verdict"] == "unknown"


def test_cli_text_shows_rule_reason_nat_and_probe() -> None:
    from boxnet.cli.topology import explain_text

    result = explain(OUTSIDE_IP, f"{HOST_IP}:8080").to_json()
    result["Probe"] = {"Summary": "no rule dropped it", "Note": "", "Trace": ["ip boxnet x"]}
    text = explain_text(result)
    first, *rest = text.splitlines()
    assert first == f"{OUTSIDE_IP} ({OUTSIDE_IP}) -> {HOST_IP} ({HOST_IP}):8080/tcp: ALLOWED"
    assert any(line.strip().startswith("rule:   table inet boxnet chain publish:") for line in rest)
    assert any(line.strip() == "reason: published port" for line in rest)
    assert f"  nat          DNAT {HOST_IP}:8080 -> 172.17.0.2:80" in rest
    assert rest[-2:] == ["probe (kernel trace): no rule dropped it", "  ip boxnet x"]
