"""The nftables backend applies network changes as deltas (firewall/nft_rules.py render_delta)
and computes the guard's expected shape instead of reading it back. This checks, in a lab
namespace, against what the kernel lists (`nft -j`, normalised, and `nft list`): after each delta
the tables equal those a whole rebuild of the same model makes, and the computed shape is what
is listed (the same reading as `is_intact`), for the golden models and up to 100 networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet.lab import Lab, venv_bin

pytestmark = pytest.mark.e2e
UNIT = Path(__file__).resolve().parent.parent / "unit"
CHECK = f"""
import json, subprocess, sys
sys.path.insert(0, {str(UNIT)!r})
from ipaddress import ip_network
from firewall_models import MODELS
from boxnet.firewall.base import BridgeIntent, FirewallModel
from boxnet.firewall.nftables import NftablesBackend

def net(i):
    return BridgeIntent(f"bx-{{i}}", ip_network(f"10.120.{{i}}.0/24"), i % 3 != 0, i % 5 == 0,
                        i % 7 != 0)

def net6(i):
    return BridgeIntent(f"bx-{{i}}", ip_network(f"2001:db8:{{i}}::/64"), i % 3 != 0, i % 5 == 0,
                        i % 7 != 0, routed=i % 4 == 0)

def listed():
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True).stdout
    items = []
    for item in json.loads(out)["nftables"]:
        for body in item.values():
            if isinstance(body, dict):
                body.pop("handle", None)
                if isinstance(body.get("elem"), list):
                    body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
        items.append(json.dumps(item, sort_keys=True))
    text = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return sorted(items), text  # the text: chains in the same order too

steps = [("none", FirewallModel((), ()))]
steps += [(name, model) for name, model in MODELS.items()]
steps += [("none again", FirewallModel((), ()))]
for count in (1, 2, 3, 10, 100, 99, 50, 51):
    bridges = tuple(x for i in range(count) for x in ((net(i), net6(i)) if i % 2 else (net(i),)))
    steps.append((f"{{count}} networks", FirewallModel(bridges, ())))
backend = NftablesBackend()
scripts = []
run = backend.run
backend.run = lambda script: scripts.append(script) or run(script)
for name, model in steps:
    scripts.clear()
    backend.rebuild(model)
    delta = "delete table" not in "".join(scripts)
    after_delta = listed()
    intact = backend._current_shape() == backend.expected_shape() and backend.is_intact()
    backend._applied = None
    backend.rebuild(model)
    print(name, delta, after_delta == listed(), intact,
          backend._current_shape() == backend.expected_shape())
backend.teardown()
"""


def test_deltas_and_computed_shape_match_the_kernel() -> None:
    with Lab("nft-shape") as lab:
        ns = lab.netns("host")
        out = str(ns.run([str(venv_bin() / "python"), "-c", CHECK]).stdout)
    lines = out.splitlines()
    assert len(lines) == 14, out
    assert all(line.endswith(" True True True") for line in lines), out
    deltas = [line.split()[-4] for line in lines]
    assert deltas.count("True") == 9, out  # every step without a change of published ports
