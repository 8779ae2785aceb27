"""The request-body accessor layer (parsing/body.py) and the parsers built on it: every wrong
type at any depth is an InvalidArgument naming the JSON path; text that is not Unicode is
refused at decoding. Root-free: pure functions only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxnet.core.create_request import parse_create, parse_endpoint_config
from boxnet.core.network_request import parse_connect, parse_network_request
from boxnet.errors import InvalidArgument
from boxnet.lan.pipework import parse_request as parse_pipework
from boxnet.parsing.body import Field, check_parameter, decode


def test_paths_name_the_offending_node() -> None:
    body = Field({"IPAM": {"Config": ["65536"]}})
    cfg = body["IPAM"]["Config"].items()[0]
    with pytest.raises(
        InvalidArgument, match=r"^IPAM\.Config\[0\]: expected an object, got a string$"
    ):
        cfg["Subnet"]
    with pytest.raises(
        InvalidArgument, match=r'^Options\["a\.b"\]: expected a string, got a number'
    ):
        Field({"Options": {"a.b": 1}})["Options"].string_map()
    with pytest.raises(InvalidArgument, match=r"^request body: expected an object, got a list"):
        Field([])["Name"]


def test_null_reads_as_absent() -> None:
    body = Field({"A": None})
    assert body["A"].text(default="d") == "d"
    assert body["A"].flag() is False
    assert body["A"].items() == []
    assert body["A"]["deeper"]["still"].absent
    assert body["Missing"].strings() == ()
    assert body["A"].integer(0, 10, default=7) == 7


@pytest.mark.parametrize(
    ("value", "reader", "message"),
    [
        (1, lambda f: f.text(), "expected a string, got a number"),
        ("x", lambda f: f.flag(), "expected true or false, got a string"),
        (True, lambda f: f.integer(0, 9, 0), "expected an integer, got a boolean"),
        (10**40, lambda f: f.integer(0, 9, 0), "out of range"),
        ({}, lambda f: f.items(), "expected a list, got an object"),
        (["a", 2], lambda f: f.strings(), r"X\[1\]: expected a string, got a number"),
        ("", lambda f: f.text(required=True), "X: required"),
    ],
)
def test_wrong_types(value: Any, reader: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        reader(Field(value, "X"))


def test_decode_refuses_lone_surrogates_naming_the_field() -> None:
    with pytest.raises(InvalidArgument, match=r"^Container: invalid text"):
        decode(b'{"Container": "\\udcff"}')
    with pytest.raises(InvalidArgument, match=r"^EndpointConfig\.Aliases\[1\]: invalid text"):
        decode(b'{"EndpointConfig": {"Aliases": ["ok", "a\\ud800"]}}')
    with pytest.raises(InvalidArgument, match=r"key"):
        decode(b'{"\\udcff": 1}')


def test_decode_refuses_invalid_utf8_naming_the_field() -> None:
    with pytest.raises(InvalidArgument, match=r"^Name: invalid text"):
        decode(b'{"Name": "n\xff"}')
    # a UTF-8-encoded surrogate is not UTF-8 either
    with pytest.raises(InvalidArgument, match=r"^Name: invalid text"):
        decode(b'{"Name": "\xed\xb3\xbf"}')
    with pytest.raises(InvalidArgument, match="malformed JSON"):
        decode(b"{\xff}")


def test_decode_refuses_non_json_numbers_and_keeps_the_rest() -> None:
    for text in (b"NaN", b'{"a": Infinity}', b"-Infinity"):
        with pytest.raises(InvalidArgument, match="malformed JSON"):
            decode(text)
    with pytest.raises(InvalidArgument, match="malformed JSON"):
        decode(b"1" * 5000)  # Python's int digit limit
    with pytest.raises(InvalidArgument, match="malformed JSON"):
        decode(b"[" * 100_000)
    assert decode(b"") == {}
    assert decode('{"Name": "caf\u00e9 \u2603"}'.encode()) == {"Name": "caf\u00e9 \u2603"}


def test_nul_refused_where_it_would_reach_execve() -> None:
    with pytest.raises(InvalidArgument, match=r"^Cmd\[1\]: a NUL character"):
        parse_create({"Image": "busybox", "Cmd": ["sh", "a\x00b"]})
    with pytest.raises(InvalidArgument, match=r"^Env: a NUL character"):
        parse_create({"Image": "busybox", "Env": "A=\x00"})
    assert Field("a\x00b").text() == "a\x00b"  # elsewhere it is just text


def test_parameters_refuse_control_characters() -> None:
    check_parameter("id", "web-1")
    with pytest.raises(InvalidArgument, match="control characters"):
        check_parameter("id", "a\x00b")


# -- the parsers on top ------------------------------------------------------------------------


def test_issue_13_ipam_config_entry_not_an_object() -> None:
    with pytest.raises(
        InvalidArgument, match=r"IPAM\.Config\[0\]: expected an object, got a string"
    ):
        parse_network_request({"Name": "n", "IPAM": {"Config": ["65536"]}})


def test_issue_13_lone_surrogate_container() -> None:
    with pytest.raises(InvalidArgument, match=r"^Container: invalid text"):
        parse_connect(decode(b'{"Container": "\\udcff"}'), "connect")


def test_endpoint_config_is_one_parser_for_create_and_connect() -> None:
    cfg = {"IPAMConfig": {"IPv4Address": "172.20.0.9"}, "Aliases": ["Web"]}
    connect = parse_connect({"Container": "c", "EndpointConfig": cfg}, "connect").endpoint
    create = parse_create(
        {
            "Image": "busybox",
            "HostConfig": {"NetworkMode": "n"},
            "NetworkingConfig": {"EndpointsConfig": {"n": cfg}},
        }
    )
    assert create.endpoints[0].aliases == connect.aliases == ("web",)
    assert create.endpoints[0].ipv4 == connect.ipv4
    for bad in ({"Aliases": ["bad alias"]}, {"Aliases": "x"}, {"IPAMConfig": {"IPv4Address": "1"}}):
        with pytest.raises(InvalidArgument):
            parse_endpoint_config(Field(bad))
        with pytest.raises(InvalidArgument):
            parse_connect({"Container": "c", "EndpointConfig": bad}, "connect")


def test_pipework_checks_names_mac_and_gateway_before_the_kernel() -> None:
    base = {"HostInterface": "br0", "Container": "c", "Address": "dhcp"}
    for key, value in (
        ("HostInterface", "br" + "x" * 20),
        ("ContainerInterface", "a/b"),
        ("MacAddress", "01:00:5e:00:00:01"),  # multicast
        ("MacAddress", "zz"),
        ("Gateway", "1.2.3"),
        ("Address", 5),
    ):
        with pytest.raises(InvalidArgument):
            parse_pipework({**base, key: value})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
KEYS = ["Name", "IPAM", "Config", "Subnet", "Container", "EndpointConfig", "Aliases", "Image"]
SHAPED = st.recursive(
    JSON,
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4) | st.lists(inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(SHAPED)
def test_parsers_raise_only_invalid_argument(body: Any) -> None:
    for parser in (
        parse_network_request,
        parse_create,
        parse_pipework,
        lambda b: parse_connect(b, "connect"),
    ):
        try:
            parser(decode(json.dumps(body).encode()))
        except InvalidArgument as exc:
            assert exc.message
