"""The iptables backend's pure rendering: jumps exactly once, BOXNET-USER never flushed, purge."""

from __future__ import annotations

from ipaddress import IPv4Address

from firewall_models import MODELS

from boxnet.firewall import iptables_rules as r
from boxnet.firewall.base import DnatIntent

MODEL = MODELS["published-ports"]


def lines(text: str, prefix: str) -> list[str]:
    return [x for x in text.splitlines() if x.startswith(prefix)]


def applied(text: str) -> str:
    """A save-like view of what a restore of `text` onto an empty host leaves (adds only)."""
    out: list[str] = []
    for x in text.splitlines():
        if x.startswith("-I "):
            _i, chain, _pos, spec = x.split(None, 3)
            out.append(f"-A {chain} {spec}")
        elif x.startswith("-D "):
            continue
        else:
            out.append(x)
    return "\n".join(out) + "\n"


def test_fresh_host_gets_every_chain_and_jump_and_an_empty_user_chain() -> None:
    text = r.render_rebuild(MODEL)
    assert ":BOXNET-USER - [0:0]" in text
    assert not any(x.startswith("-A BOXNET-USER") for x in text.splitlines())
    assert lines(text, "-I FORWARD") == [
        "-I FORWARD 1 -j BOXNET-USER",
        "-I FORWARD 2 -j BOXNET-FORWARD",
    ]
    assert "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BOXNET" in text
    assert "-A OUTPUT -m addrtype --dst-type LOCAL -j BOXNET" in text
    assert r.missing_pieces(r.parse_save(applied(text))) == []


def test_second_rebuild_neither_adds_nor_deletes_jumps_nor_redeclares_the_user_chain() -> None:
    state = r.parse_save(applied(r.render_rebuild(MODEL)))
    assert r.render_rebuild(MODEL, state) == ""  # nothing to do: no exec at all


def test_a_new_network_rewrites_only_the_chains_that_change() -> None:
    state = r.parse_save(applied(r.render_rebuild(MODELS["user-networks"])))
    text = r.render_rebuild(MODEL, state)  # the same bridges plus published ports
    assert text == (
        "*nat\n:BOXNET - [0:0]\n"
        + "\n".join(x for x in r.render_rebuild(MODEL).splitlines() if x.startswith("-A BOXNET -"))
        + "\nCOMMIT\n"
    )


def test_jump_pushed_down_by_a_foreign_rule_is_moved_back_to_the_top() -> None:
    save = applied(r.render_rebuild(MODEL)).replace(
        "*filter\n", "*filter\n-A FORWARD -s 10.0.0.2/32 -j ACCEPT\n"
    )
    state = r.parse_save(save)
    assert state["filter"].rules["FORWARD"][0] == "-A FORWARD -s 10.0.0.2/32 -j ACCEPT"
    text = r.render_rebuild(MODEL, state)
    assert lines(text, "-D FORWARD") == [
        "-D FORWARD -j BOXNET-USER",
        "-D FORWARD -j BOXNET-FORWARD",
    ]
    assert lines(text, "-I FORWARD") == [
        "-I FORWARD 1 -j BOXNET-USER",
        "-I FORWARD 2 -j BOXNET-FORWARD",
    ]
    assert "10.0.0.2" not in text  # the foreign rule itself is never touched


def test_duplicated_jump_is_deleted_twice_and_added_once() -> None:
    save = "*nat\n:BOXNET - [0:0]\n-A OUTPUT -m addrtype --dst-type LOCAL -j BOXNET\n" * 1
    save += "-A OUTPUT -m addrtype --dst-type LOCAL -j BOXNET\nCOMMIT\n"
    text = r.render_rebuild(MODEL, r.parse_save(save))
    assert lines(text, "-D OUTPUT") == ["-D OUTPUT -m addrtype --dst-type LOCAL -j BOXNET"] * 2
    assert lines(text, "-A OUTPUT") == ["-A OUTPUT -m addrtype --dst-type LOCAL -j BOXNET"]


def test_loopback_dnat_is_reachable_only_through_output() -> None:
    text = r.render_rebuild(MODEL)
    lo = "-A BOXNET -d 127.0.0.1/32 -p tcp -m tcp --dport 8090"
    assert any(x.startswith(lo) for x in text.splitlines())
    # PREROUTING (the LAN side) never enters BOXNET for 127/8; raw drops 127/8 from bridges.
    assert lines(text, "-A PREROUTING ! -d 127.0.0.0/8")
    assert "-A BOXNET-PREROUTING -d 127.0.0.0/8 -i boxnet0 -j DROP" in text


def test_specific_addresses_come_before_every_address() -> None:
    dnat = lines(r.render_rebuild(MODEL), "-A BOXNET -")
    specific = [i for i, x in enumerate(dnat) if " -d " in x]
    anyaddr = [i for i, x in enumerate(dnat) if " -d " not in x]
    assert max(specific) < min(anyaddr)
    add = r.render_dnat_change("add", list(MODEL.dnats))
    assert lines(add, "-I BOXNET 1 -d ") and all(" -d " not in x for x in lines(add, "-A "))


def test_internal_and_isolation_and_masquerade_shapes() -> None:
    text = r.render_rebuild(MODEL)
    assert "-A BOXNET-POSTROUTING -s 172.17.0.0/16 ! -o boxnet0 -j MASQUERADE" in text
    assert "172.18.0.0/16 ! -o" not in text  # internal: never masqueraded
    assert "-A BOXNET-ISOLATION-STAGE-1 -i bx-1a2b3c4d5e6f ! -o bx-1a2b3c4d5e6f -j DROP" in text
    assert "-A BOXNET-ISOLATION-STAGE-2 -o boxnet0 -j DROP" in text
    icc = r.render_icc(MODEL.bridges)
    assert "ip saddr 172.19.0.0/16 ip daddr 172.19.0.0/16 drop" in icc
    assert "172.17.0.0" not in icc


def test_dnat_change_is_one_nat_batch() -> None:
    d = DnatIntent(IPv4Address("0.0.0.0"), "udp", 53, IPv4Address("172.17.0.5"), 5353)
    assert r.render_dnat_change("delete", [d]) == (
        "*nat\n"
        "-D BOXNET -p udp -m udp --dport 53 -j DNAT --to-destination 172.17.0.5:5353\n"
        "COMMIT\n"
    )
    state = r.parse_save(applied(r.render_rebuild(MODEL)))
    assert r.present_dnats(state, [d, MODEL.dnats[0]]) == [MODEL.dnats[0]]


def test_purge_removes_jumps_and_chains_but_keeps_the_user_chain() -> None:
    save = applied(r.render_rebuild(MODEL)).replace(
        "*filter\n", "*filter\n-A FORWARD -s 10.0.0.2/32 -j ACCEPT\n"
    )
    text = r.render_purge(r.parse_save(save))
    assert "-D FORWARD -j BOXNET-USER" in text and "-D FORWARD -j BOXNET-FORWARD" in text
    assert "-X BOXNET-FORWARD" in text and "-X BOXNET" in text
    assert "-X BOXNET-USER" not in text and ":BOXNET-USER" not in text
    assert "10.0.0.2" not in text
    assert r.render_purge(r.parse_save("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")) == ""


def test_an_ipv6_probe_needs_its_dnat_and_its_routed_accept() -> None:
    from ipaddress import IPv6Address

    from boxnet.firewall.base import FirewallModel, Published

    six = DnatIntent(IPv6Address("::"), "tcp", 8080, IPv6Address("2001:db8:1::2"), 80)
    four = DnatIntent(IPv4Address("0.0.0.0"), "tcp", 8080, IPv4Address("172.18.0.2"), 80)
    whole = r.parse_save(applied(r.render_rebuild(FirewallModel((), (six,)), family=6)))
    assert r.probe_present(whole, six)
    no_nat = r.parse_save(applied(r.render_rebuild(FirewallModel((), ()), family=6)))
    assert not r.probe_present(no_nat, six)
    no_routed = r.parse_save(applied(r.render_rebuild(FirewallModel((), (six,)), family=6)))
    no_routed["filter"].rules[r.ROUTED_CHAIN] = []
    assert not r.probe_present(no_routed, six)
    published = Published()
    published.reset(
        [four, six, DnatIntent(IPv4Address("0.0.0.0"), "udp", 53, four.container_ip, 53)]
    )
    assert published.probes(lambda d: d.version) == [four, six]  # the oldest of each family
