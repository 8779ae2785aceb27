"""The nftables guard's expected shape is computed from the script boxnet applies, not read back
(firewall/nftables.py script_shape): this checks, in a lab namespace, that what the kernel then
lists (the same reading as `is_intact`) agrees, for the golden models and 100 networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet.lab import Lab, venv_bin

pytestmark = pytest.mark.e2e
UNIT = Path(__file__).resolve().parent.parent / "unit"
CHECK = f"""
import sys
sys.path.insert(0, {str(UNIT)!r})
from ipaddress import ip_network
from firewall_models import MODELS
from boxnet.firewall.base import BridgeIntent, FirewallModel
from boxnet.firewall.nftables import NftablesBackend
models = dict(MODELS)
models["100 networks"] = FirewallModel(tuple(
    BridgeIntent(f"bx-{{i}}", ip_network(f"10.120.{{i}}.0/24"), i % 3 != 0, i % 5 == 0, i % 2 == 0)
    for i in range(100)), ())
models["none"] = FirewallModel((), ())
backend = NftablesBackend()
for name, model in models.items():
    backend.rebuild(model)
    print(name, backend._current_shape() == backend._shape, backend.is_intact())
backend.teardown()
"""


def test_computed_shape_is_what_the_kernel_lists() -> None:
    with Lab("nft-shape") as lab:
        ns = lab.netns("host")
        out = ns.run([str(venv_bin() / "python"), "-c", CHECK]).stdout
    lines = str(out).splitlines()
    assert len(lines) == 6, out
    assert all(line.endswith(" True True") for line in lines), out
