"""The tutorial's daemon.json (§2.4), fixed one round at a time as our messages say.

Each stage's full output is pinned: these messages are the product (SPEC §2, FEATURES B9).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from boxnet.config import ConfigErrors, render_problems, resolve_config

DATA = Path(__file__).resolve().parent.parent / "data" / "daemon-json"


def problems_of(name: str) -> tuple[str, ConfigErrors]:
    path = DATA / name
    with pytest.raises(ConfigErrors) as info:
        resolve_config(["--config-file", str(path)], env={})
    return str(path), info.value


def test_tutorial_file_reports_every_syntax_mistake_at_once() -> None:
    path, err = problems_of("tutorial.json")
    assert (
        render_problems(err)
        == f"""\
Error: invalid boxnetd configuration (4 problems):

{path}:2:1: JSON needs double quotes: 'bip' → "bip"
    2 | 'bip':"192.168.1.5/24"
      | ^^^^^

{path}:2:23: missing comma after line 2
    2 | 'bip':"192.168.1.5/24"
      |                       ^
  hint: add ',' at the end of line 2: every member but the last ends with ','

{path}:3:28: missing comma after line 3
    3 | "final-cidr":"10.20.0.0/36"
      |                            ^
  hint: add ',' at the end of line 3: every member but the last ends with ','

{path}:4:30: missing comma after line 4
    4 | "default-gateway":"10.20.1.1"
      |                              ^
  hint: add ',' at the end of line 4: every member but the last ends with ','
"""
    )
    assert err.render() == render_problems(err)
    assert all(p.key is None for p in err.errors)


def test_stage1_syntax_fixed_unknown_key_with_suggestion() -> None:
    path, err = problems_of("tutorial-1-syntax-fixed.json")
    assert (
        render_problems(err)
        == f"""\
Error: invalid boxnetd configuration (2 problems):

{path}:3:1: final-cidr: unknown key, did you mean 'fixed-cidr'?
  hint: rename "final-cidr" to "fixed-cidr"

{path}:4:1: default-gateway: 10.20.1.1 is not inside the bip network 192.168.1.0/24 \
(bip 192.168.1.5/24 on line 2)
  hint: pick a router address inside 192.168.1.0/24, or leave default-gateway out: \
containers then route through the bridge address 192.168.1.5
"""
    )
    unknown = err.errors[0]
    assert (unknown.key, unknown.source) == ("final-cidr", f"{path}:3:1")


def test_stage2_key_fixed_bad_prefix_length() -> None:
    path, err = problems_of("tutorial-2-key-fixed.json")
    first = err.errors[0]
    assert first.headline() == (
        f'{path}:3:1: fixed-cidr: invalid CIDR "10.20.0.0/36": '
        "/36 is not a valid IPv4 prefix length (0-32)"
    )
    assert first.value == "10.20.0.0/36"
    assert first.hint == "an IPv4 prefix length is /0 to /32, e.g. 10.20.0.0/24"
    assert [p.key for p in err.errors] == ["fixed-cidr", "default-gateway"]


def test_stage3_prefix_fixed_fixed_cidr_and_gateway_outside_bip() -> None:
    path, err = problems_of("tutorial-3-prefix-fixed.json")
    assert (
        render_problems(err)
        == f"""\
Error: invalid boxnetd configuration (2 problems):

{path}:3:1: fixed-cidr: 10.20.0.0/16 is not inside the bip network 192.168.1.0/24 \
(bip 192.168.1.5/24 on line 2)
  hint: fixed-cidr is the part of 192.168.1.0/24 containers get addresses from, \
e.g. 192.168.1.0/25; or move bip into it, e.g. bip 10.20.0.1/16

{path}:4:1: default-gateway: 10.20.1.1 is not inside the bip network 192.168.1.0/24 \
(bip 192.168.1.5/24 on line 2)
  hint: pick a router address inside 192.168.1.0/24, or leave default-gateway out: \
containers then route through the bridge address 192.168.1.5
"""
    )


def test_stage4_following_the_hint_gives_a_valid_config() -> None:
    path = DATA / "tutorial-4-valid.json"
    config = resolve_config(["--config-file", str(path)], env={})
    assert config.bip == IPv4Interface("10.20.0.1/16")
    assert config.fixed_cidr == IPv4Network("10.20.0.0/16")
    assert config.default_gateway == IPv4Address("10.20.1.1")
    assert config.dns == (IPv4Address("10.20.1.1"), IPv4Address("10.20.1.3"))
    assert config.sources["bip"] == f"{path}:2:1"
    assert config.sources["dns"] == f"{path}:5:1"
    assert config.sources["mtu"] == "default"
    assert config.config_file == path
