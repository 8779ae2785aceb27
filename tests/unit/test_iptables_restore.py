"""The rendered batches applied for real with both binaries, iptables-nft and iptables-legacy.

Each variant gets a throwaway namespace holding a foreign rule and a DROP policy; what
`iptables-<variant>-save` prints afterwards is the independent observer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from firewall_models import MODELS

from boxnet.firewall import iptables_rules as r
from boxnet.lab import Lab, Netns

pytestmark = pytest.mark.e2e
MODEL = MODELS["published-ports"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    the_lab = Lab("iptrestore")
    try:
        yield the_lab
    finally:
        the_lab.close()


class Host:
    def __init__(self, ns: Netns, variant: str) -> None:
        self.ns, self.variant = ns, variant

    def ipt(self, *args: str) -> None:
        self.ns.run([f"iptables-{self.variant}", "-w", *args])

    def save(self) -> str:
        return str(self.ns.run([f"iptables-{self.variant}-save"]).stdout)

    def restore(self, text: str) -> None:
        self.ns.run([f"iptables-{self.variant}-restore", "--noflush", "-w"], input=text)


@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_rebuild_publish_purge_with_each_binary(lab: Lab, variant: str) -> None:
    h = Host(lab.netns(f"h-{variant}"), variant)
    h.ipt("-P", "FORWARD", "DROP")
    h.ipt("-A", "FORWARD", "-s", "10.0.0.1/32", "-j", "ACCEPT")
    h.restore(r.render_rebuild(MODEL, r.parse_save(h.save())))
    state = r.parse_save(h.save())
    assert r.missing_pieces(state) == []
    assert ":FORWARD DROP" in h.save()
    assert state["filter"].rules["FORWARD"] == [
        "-A FORWARD -j BOXNET-USER",
        "-A FORWARD -j BOXNET-FORWARD",
        "-A FORWARD -s 10.0.0.1/32 -j ACCEPT",
    ]
    # What the kernel holds is, chain by chain, exactly what was rendered (same text too).
    rendered = r.parse_save(r.render_rebuild(MODEL))
    for table in r.TABLES:
        for chain in r.OWN_CHAINS[table]:
            assert state[table].rules.get(chain, []) == rendered[table].rules.get(chain, [])

    # The kernel prints our rules exactly as rendered: a second rebuild has nothing to do.
    assert r.render_rebuild(MODEL, state) == ""

    # A user rule in BOXNET-USER survives a rebuild; nothing is added twice.
    h.ipt("-A", "BOXNET-USER", "-s", "10.9.9.9/32", "-j", "DROP")
    h.ipt("-I", "FORWARD", "1", "-s", "10.0.0.2/32", "-j", "ACCEPT")  # pushes our jumps down
    h.restore(r.render_rebuild(MODELS["user-networks"], r.parse_save(h.save())))
    again = r.parse_save(h.save())
    assert again["filter"].rules["BOXNET-USER"] == ["-A BOXNET-USER -s 10.9.9.9/32 -j DROP"]
    assert again["filter"].rules["FORWARD"][:2] == [
        "-A FORWARD -j BOXNET-USER",
        "-A FORWARD -j BOXNET-FORWARD",
    ]
    assert again["nat"].rules.get("BOXNET", []) == []  # user-networks publishes nothing
    assert again["nat"].rules["OUTPUT"] == ["-A OUTPUT -m addrtype --dst-type LOCAL -j BOXNET"]

    # Publish then unpublish then publish again: one batch each.
    h.restore(r.render_dnat_change("add", list(MODEL.dnats)))
    h.restore(r.render_dnat_change("delete", list(MODEL.dnats)))
    assert r.parse_save(h.save())["nat"].rules.get("BOXNET", []) == []
    h.restore(r.render_dnat_change("add", list(MODEL.dnats)))
    assert len(r.parse_save(h.save())["nat"].rules["BOXNET"]) == len(MODEL.dnats)

    h.restore(r.render_purge(r.parse_save(h.save())))
    after = h.save()
    assert "BOXNET-FORWARD" not in after and "-j BOXNET" not in after
    assert "-A BOXNET-USER -s 10.9.9.9/32 -j DROP" in after  # the user's, kept
    assert "-A FORWARD -s 10.0.0.1/32 -j ACCEPT" in after and ":FORWARD DROP" in after
