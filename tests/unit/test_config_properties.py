"""Property tests: any text in, a value or a configuration problem out, never another exception."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxnet.config import ConfigErrors, DaemonConfig, resolve_config
from boxnet.config import clustervalues as cv
from boxnet.config import netvalues as nv
from boxnet.config import textvalues as tv
from boxnet.config.fields import FIELDS
from boxnet.config.jsonfile import parse_config_text

EMPTY = str(Path(__file__).resolve().parent.parent / "data" / "daemon-json" / "empty-object.json")

# Text that looks like what people type into these options, plus anything at all.
_cidr_like = st.from_regex(r"\A[0-9./a-f:x ,=-]{0,24}\Z")
_store_like = st.from_regex(r"\Aetcd://[0-9a-z.:\[\],/-]{0,30}\Z")
# argv carries undecodable bytes as lone surrogates (PEP 383), so those are "text" too.
_argv_chars = st.characters(codec="utf-8") | st.characters(
    min_codepoint=0xDC80, max_codepoint=0xDCFF
)
_any_text = (
    st.text(_argv_chars, max_size=40)
    | _cidr_like
    | _store_like
    | st.from_regex(r"\Abase=[0-9./]{0,20},size=[0-9-]{0,4}\Z")
)

PARSERS: list[Callable[[str], object]] = [
    nv.parse_bool_text,
    nv.parse_uint_text,
    nv.parse_ipv4_address,
    nv.parse_ip_address,
    nv.parse_ipv4_cidr,
    nv.parse_ipv4_network,
    nv.parse_bip,
    nv.parse_pool_text,
    tv.parse_dns_opt,
    tv.parse_domain,
    tv.parse_bridge,
    tv.parse_firewall_backend,
    tv.parse_iptables_variant,
    tv.parse_abs_path,
    tv.parse_host,
    cv.parse_cluster_store,
    cv.parse_cluster_advertise,
    cv.parse_cluster_store_opt,
]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@given(text=_any_text)
def test_parsers_raise_only_bad_value(parse: Callable[[str], object], text: str) -> None:
    try:
        parse(text)
    except nv.BadValue as err:
        assert err.message


@pytest.mark.parametrize("flag", [f.flag for f in FIELDS] + ["--validate", "--config-file"])
@given(text=_any_text)
@settings(max_examples=60)
def test_every_flag_value_gives_a_config_or_config_errors(flag: str, text: str) -> None:
    for argv in (["--config-file", EMPTY, f"{flag}={text}"], ["--config-file", EMPTY, flag, text]):
        try:
            assert isinstance(resolve_config(argv, env={}), DaemonConfig)
        except ConfigErrors as err:
            assert all(p.message and p.source for p in err.errors)
            assert err.render()


@given(text=st.text(max_size=200) | st.from_regex(r'\A[\s{}\[\]:,"\'a-z0-9/.#*=-]{0,80}\Z'))
@settings(max_examples=300)
def test_any_file_text_gives_a_file_or_config_errors(text: str) -> None:
    try:
        parse_config_text(text, "d.json")
    except ConfigErrors as err:
        assert err.render()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    data=st.dictionaries(st.text(max_size=10), _json, max_size=4),
    indent=st.sampled_from([None, 1, 4]),
)
def test_valid_json_is_never_reported_as_a_syntax_error(
    data: dict[str, object], indent: int | None
) -> None:
    loaded = parse_config_text(json.dumps(data, indent=indent, ensure_ascii=False), "d.json")
    assert loaded.data == data
    assert all(key in data for (key, *_rest) in loaded.positions)


_key = st.sampled_from([f.key for f in FIELDS] + ["final-cidr", "log-driver"])


@given(data=st.dictionaries(_key, _json | _any_text, max_size=5))
@settings(max_examples=150)
def test_any_daemon_json_gives_a_config_or_config_errors(data: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "daemon.json"
        path.write_text(json.dumps(data))
        try:
            assert isinstance(resolve_config(["--config-file", str(path)], env={}), DaemonConfig)
        except ConfigErrors as err:
            assert all(p.source.startswith(str(path)) for p in err.errors)


@given(addr=st.integers(0, 2**32 - 1).map(IPv4Address), prefix=st.integers(0, 30), text=st.just(""))
def test_bip_accepts_exactly_the_usable_host_addresses(
    addr: IPv4Address, prefix: int, text: str
) -> None:
    iface = IPv4Interface((addr, prefix))
    usable = addr not in (iface.network.network_address, iface.network.broadcast_address) and not (
        addr.is_loopback or addr.is_multicast or addr.is_reserved or addr.is_link_local
    )
    try:
        assert nv.parse_bip(f"{addr}/{prefix}") == iface
        assert usable
    except nv.BadValue:
        assert not usable


@given(base=st.integers(0, 2**32 - 1), prefix=st.integers(0, 30), data=st.data())
def test_pool_flag_round_trip(base: int, prefix: int, data: st.DataObject) -> None:
    net = IPv4Network((base, prefix), strict=False)
    size = data.draw(st.integers(prefix, 30))
    assert nv.parse_pool_text(f"base={net},size={size}") == (net, size)
    assert nv.parse_pool_text(f"size={size},base={net}") == (net, size)


@given(
    text=st.sampled_from(
        ["1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False"]
    )
)
def test_bool_spellings_are_gos(text: str) -> None:
    assert nv.parse_bool_text(text) is (text.lower() in ("1", "t", "true"))
