"""Golden files: the rules each firewall backend renders for the reference models.

Regenerate after an intended change with
`BOXNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_iptables_golden.py`
and review the diff of tests/golden/ like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from firewall_models import MODELS

from boxnet.firewall import iptables_rules, nftables

GOLDEN = Path(__file__).parent.parent / "golden"
UPDATE = os.environ.get("BOXNET_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run with BOXNET_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} differs from the golden file (see the diff above)"


def render_iptables(case: str) -> str:
    model = MODELS[case]
    ipv6 = iptables_rules.family_model(model, 6)
    return (
        "# iptables-restore --noflush input on a host without rules\n"
        + iptables_rules.render_rebuild(iptables_rules.family_model(model, 4))
        + (
            "# ip6tables-restore --noflush input on a host without rules\n"
            + iptables_rules.render_rebuild(ipv6, family=6)
            if ipv6.bridges
            else ""
        )
        + "# nft: bridge family table (ICC)\n"
        + iptables_rules.render_icc(model.bridges)
    )


@pytest.mark.parametrize("case", sorted(MODELS))
def test_iptables_ruleset_matches_golden(case: str) -> None:
    check_golden(f"{case}.iptables", render_iptables(case))


@pytest.mark.parametrize("case", sorted(MODELS))
def test_nftables_ruleset_matches_golden(case: str) -> None:
    check_golden(f"{case}.nft", nftables.render_ruleset(MODELS[case]))


def test_golden_dir_has_no_strays() -> None:
    expected = {f"{c}.{ext}" for c in MODELS for ext in ("iptables", "nft")}
    assert {p.name for p in GOLDEN.iterdir()} == expected
