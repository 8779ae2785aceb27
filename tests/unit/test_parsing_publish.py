"""-p/--publish and --expose, compared with Docker's nat.ParsePortSpec (go-connections)."""

from __future__ import annotations

import contextlib
import json
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxnet.errors import InvalidArgument
from boxnet.parsing.publish import PortSpec, from_api, parse_expose, parse_publish, to_api


def mappings(text: str) -> list[tuple[str, str, str]]:
    """The spec in Docker's own terms: ParsePortSpec's []PortMapping as (Port, HostIP, HostPort)."""
    out: list[tuple[str, str, str]] = []
    for spec in parse_publish(text):
        _, bindings = to_api([spec])
        for key, binds in bindings.items():
            out.extend((key, b["HostIp"], b["HostPort"]) for b in binds)
    return out


# (spec, what Docker's ParsePortSpec returns as (Port, HostIP, HostPort) mappings)
ACCEPTED = [
    ("80", [("80/tcp", "", "")]),
    ("80/tcp", [("80/tcp", "", "")]),
    ("80/udp", [("80/udp", "", "")]),
    ("80/sctp", [("80/sctp", "", "")]),
    ("80/UDP", [("80/udp", "", "")]),  # Docker lower-cases the protocol
    ("80/", [("80/tcp", "", "")]),  # empty protocol means tcp
    ("0080", [("80/tcp", "", "")]),  # ParseUint accepts leading zeros
    ("8080:80", [("80/tcp", "", "8080")]),
    ("8080:80/udp", [("80/udp", "", "8080")]),
    ("65535:1", [("1/tcp", "", "65535")]),
    ("127.0.0.1:8080:80", [("80/tcp", "127.0.0.1", "8080")]),
    ("0.0.0.0:8080:80", [("80/tcp", "0.0.0.0", "8080")]),
    ("127.0.0.1::80", [("80/tcp", "127.0.0.1", "")]),
    ("192.168.1.100::6000/udp", [("6000/udp", "192.168.1.100", "")]),
    ("[::1]:8080:80", [("80/tcp", "::1", "8080")]),
    ("[::]::80", [("80/tcp", "::", "")]),
    ("[2001:4860:0:2001::68]::333", [("333/tcp", "2001:4860:0:2001::68", "")]),
    ("2001:4860:0:2001::68::333", [("333/tcp", "2001:4860:0:2001::68", "")]),
    ("::1:80:80", [("80/tcp", "::1", "80")]),
    ("::::80", [("80/tcp", "::", "")]),
    ("[1.2.3.4]:80:80", [("80/tcp", "1.2.3.4", "80")]),
    ("::80", [("80/tcp", "", "")]),  # empty IP and host port, as in Docker
    (":8080:80", [("80/tcp", "", "8080")]),
    ("7000-7002", [("7000/tcp", "", ""), ("7001/tcp", "", ""), ("7002/tcp", "", "")]),
    ("1234-1235:3333-3334", [("3333/tcp", "", "1234"), ("3334/tcp", "", "1235")]),
    (
        "0.0.0.0:1234-1235:3333-3334/tcp",
        [("3333/tcp", "0.0.0.0", "1234"), ("3334/tcp", "0.0.0.0", "1235")],
    ),
    ("9000-9100:80", [("80/tcp", "", "9000-9100")]),
    ("127.0.0.1:9000-9100:80/udp", [("80/udp", "127.0.0.1", "9000-9100")]),
    ("8080-8080:80", [("80/tcp", "", "8080")]),
    ("8080:80-80", [("80/tcp", "", "8080")]),
    ("80-80", [("80/tcp", "", "")]),
]

# (spec, words the message must contain); Docker rejects all but the first three too.
REJECTED = [
    ("0:80", "host port 0 is out of range (1-65535)"),  # Docker: random port
    (":80", "host port before ':' is empty"),  # Docker: random port
    ("0", "container port 0 is out of range"),  # Docker: fails later, in the daemon
    ("70000:80", "host port 70000 is out of range (1-65535)"),
    ("80:70000", "container port 70000 is out of range"),
    ("65536", "container port 65536 is out of range"),
    ("80:", "no container port"),
    ("", "it is empty"),
    ("abc", 'container port "abc" is not a port number'),
    ("abc:80", 'host port "abc" is not a port number'),
    ("1.2.3.4:80", "an IP needs IP:HOSTPORT:CPORT or IP::CPORT"),
    ("9002-9000:80", "host port range 9002-9000 is reversed"),
    ("80-79", "container port range 80-79 is reversed"),
    ("9000-9001:80-82", "host ports 9000-9001 (2) and container ports 80-82 (3) differ"),
    ("8080:80-82", "host ports 8080 (1) and container ports 80-82 (3) differ"),
    ("80/icmp", 'unknown protocol "icmp"'),
    ("80/tcp/udp", 'unknown protocol "tcp/udp"'),
    ("300.1.1.1:80:80", 'host IP "300.1.1.1" is not a valid IP address'),
    ("localhost:80:80", 'host IP "localhost" is not a valid IP address'),
    ("fe80::1%eth0::80", "not a valid IP address"),  # Go's ParseIP refuses zones
    ("[::1", 'missing its closing "]"'),
    ("[::1]:80", "an IP needs"),
    ("[]::80", "holds no IP address"),
    ("/udp", "no container port"),
    ("-1", 'container port "-1" is not a port number'),
    ("192.168.1.100:-1:-1", "not a port number"),
    ("1-2-3", "not a port number or range"),  # Docker silently reads 1-2
    ("+80", "not a port number"),
    (" 80", "not a port number"),
    ("\uff18\uff10", "not a port number"),  # fullwidth "80": int() takes it, Go does not
    ("1:2:3:4", 'host IP "1:2" is not a valid IP address'),
    ("99999999999999999999999999:80", "out of range"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_like_docker(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert mappings(text) == expected


@pytest.mark.parametrize(("text", "words"), REJECTED)
def test_rejected_with_clear_message(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_publish(text)
    assert info.value.message.startswith(f'invalid publish spec "{text}": ')
    assert words in info.value.message


def test_table_is_big_enough() -> None:
    assert len(ACCEPTED) + len(REJECTED) >= 40


def test_message_example_from_brief() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_publish("70000:80")
    assert info.value.message == (
        'invalid publish spec "70000:80": host port 70000 is out of range (1-65535)'
    )
    assert info.value.hint


def test_host_range_with_one_container_port_is_one_spec() -> None:
    assert parse_publish("127.0.0.1:9000-9100:80/udp") == [
        PortSpec(IPv4Address("127.0.0.1"), 9000, 9100, 80, 80, "udp")
    ]
    assert parse_publish("[::1]:8080:80")[0].host_ip == IPv6Address("::1")


def test_expose() -> None:
    assert parse_expose("80") == [(80, "tcp")]
    assert parse_expose("8000-8002/udp") == [(8000, "udp"), (8001, "udp"), (8002, "udp")]
    for bad, words in [
        ("80:80", "--expose takes a container port"),
        ("80/icmp", "unknown protocol"),
        ("0", "out of range"),
        ("", "no port"),
        ("9-1", "reversed"),
    ]:
        with pytest.raises(InvalidArgument, match=words):
            parse_expose(bad)


def test_to_api_like_docker_cli() -> None:
    specs = [
        *parse_publish("80"),
        *parse_publish("[::1]:9000-9100:80"),
        *parse_publish("53:53/udp"),
    ]
    exposed, bindings = to_api(specs)
    assert exposed == {"80/tcp": {}, "53/udp": {}}
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "::1", "HostPort": "9000-9100"}],
        "53/udp": [{"HostIp": "", "HostPort": "53"}],
    }


def test_from_api_publish_all_and_empty_bindings() -> None:
    bindings = {"80/tcp": [], "81/tcp": None, "82/tcp": [{"HostPort": "8082"}]}
    specs = from_api(bindings, {"443/tcp": {}, "80/tcp": {}}, True)
    assert [(s.container_port_start, s.host_port_start) for s in specs] == [
        (82, 8082),
        (443, None),
        (80, None),
        (81, None),
    ]
    assert from_api({"80/tcp": []}, {"443/tcp": {}}, False) == []
    assert from_api(None, None, None) == []
    assert from_api({"80": [{"HostIp": "", "HostPort": ""}]}, None)[0].proto == "tcp"


BAD_API = [
    ({"80/tcp": [{"HostIp": "", "HostPort": "70000"}]}, "host port 70000 is out of range"),
    ({"80/tcp": [{"HostIp": "", "HostPort": "0"}]}, "host port 0 is out of range"),
    ({"80/tcp": [{"HostIp": "300.1.1.1", "HostPort": ""}]}, 'host IP "300.1.1.1"'),
    ({"80/tcp": [{"HostIp": "[::1]", "HostPort": ""}]}, "not a valid IP address"),
    ({"80/tcp": [{"HostPort": "9002-9000"}]}, "reversed"),
    ({"80/tcp": [{"HostPort": 8080}]}, "HostPort must be a string, got int"),
    ({"80/tcp": [{"HostIp": 1}]}, "HostIp must be a string"),
    ({"80/tcp": ["8080"]}, "expected an object, got str"),
    ({"80/tcp": {"HostPort": "8080"}}, "expected a list, got dict"),
    ({"80/icmp": []}, 'unknown protocol "icmp"'),
    ({"70000/tcp": []}, "container port 70000 is out of range"),
    ({"80-82/tcp": []}, "expected one port"),
    ({"": []}, "not a port number"),
    ([["80/tcp"]], "invalid PortBindings: expected an object, got list"),
]


@pytest.mark.parametrize(("bindings", "words"), BAD_API)
def test_from_api_rejects(bindings: object, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words.replace("(", r"\(").replace("[", r"\[")):
        from_api(bindings, None, False)


def test_from_api_rejects_bad_exposed_and_flag() -> None:
    with pytest.raises(InvalidArgument, match="ExposedPorts"):
        from_api(None, ["80/tcp"], False)
    with pytest.raises(InvalidArgument, match="ExposedPorts value"):
        from_api(None, {"80/tcp": 1}, False)
    with pytest.raises(InvalidArgument, match="PublishAllPorts"):
        from_api(None, None, "yes")


# -- properties ------------------------------------------------------------------------------

port = st.integers(1, 65535)
ip_text = st.one_of(
    st.none(),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)


@st.composite
def publish_specs(draw: st.DrawFn) -> str:
    proto = draw(st.sampled_from(["", "/tcp", "/udp", "/sctp"]))
    cstart = draw(port)
    length = draw(st.integers(0, min(5, 65535 - cstart)))
    container = f"{cstart}-{cstart + length}" if length else str(cstart)
    host = draw(st.one_of(st.just(""), port.map(str)))
    if host and length:
        hstart = draw(st.integers(1, 65535 - length))
        host = f"{hstart}-{hstart + length}"
    elif host and draw(st.booleans()):
        hstart = draw(st.integers(1, 65534))
        host = f"{hstart}-{draw(st.integers(hstart, 65535))}"
    ip = draw(ip_text)
    if ip is not None:
        return f"{ip}:{host}:{container}{proto}"
    return f"{host}:{container}{proto}" if host else f"{container}{proto}"


@given(st.text(max_size=40))
def test_parse_only_raises_invalid_argument(text: str) -> None:
    try:
        parse_publish(text)
    except InvalidArgument as err:
        assert text in err.message
    with contextlib.suppress(InvalidArgument):
        parse_expose(text)


@given(st.text(alphabet="0123456789:-/[].abcdeftupsTCP%", max_size=30))
def test_parse_only_raises_invalid_argument_on_near_misses(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_publish(text)


def _key(spec: PortSpec) -> tuple[object, ...]:
    return (str(spec.host_ip), spec.host_port_start or 0, spec.container_port_start, spec.proto)


@given(st.lists(publish_specs(), min_size=1, max_size=4))
def test_to_api_from_api_round_trip(texts: list[str]) -> None:
    specs = [spec for text in texts for spec in parse_publish(text)]
    exposed, bindings = json.loads(json.dumps(to_api(specs)))  # as it crosses HTTP
    back = from_api(bindings, exposed, False)
    assert sorted(back, key=_key) == sorted(specs, key=_key)
    assert to_api(back) == (exposed, bindings)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values, json_values, json_values)
def test_from_api_only_raises_invalid_argument(
    bindings: object, exposed: object, flag: object
) -> None:
    with contextlib.suppress(InvalidArgument):
        from_api(bindings, exposed, flag)
