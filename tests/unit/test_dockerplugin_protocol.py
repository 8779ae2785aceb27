"""The Docker network plugin's protocol side (api/routes_dockerplugin.py): Docker's JSON shapes
in, typed values out, refusals as {"Err"} with the plugin media type."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from boxnet.api import routes_dockerplugin as rd
from boxnet.api.server import Request
from boxnet.core.dockerplugin import peer_name
from boxnet.errors import InvalidArgument
from boxnet.model import PortRequest
from boxnet.parsing.body import Field


def test_portmap_becomes_port_requests() -> None:
    options = Field(
        {
            "com.docker.network.portmap": [
                {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080,
                 "HostPortEnd": 8080},
                {"Proto": 17, "Port": 53, "HostIP": "127.0.0.1", "HostPort": 0, "HostPortEnd": 0},
            ]
        }
    )  # fmt: skip
    assert rd._ports(options) == [
        PortRequest(80, "tcp", None, 8080, 8080),
        PortRequest(53, "udp", IPv4Address("127.0.0.1"), None, None),
    ]


def test_unknown_protocol_number_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="Proto"):
        rd._ports(Field({"com.docker.network.portmap": [{"Proto": 1, "Port": 80}]}))


def test_ipam_data_gives_pool_gateway_and_aux() -> None:
    body = Field(
        {"IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "10.99.60.0/24",
                       "Gateway": "10.99.60.1/24", "AuxAddresses": {"a": "10.99.60.9/24"}}]}
    )  # fmt: skip
    pool, gateway, aux = rd._ipam_v4(body)
    assert pool == IPv4Network("10.99.60.0/24")
    assert gateway == IPv4Address("10.99.60.1")
    assert aux == {"a": "10.99.60.9"}


def test_no_ipv4_pool_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidArgument) as err:
        rd._ipam_v4(Field({"IPv4Data": []}))
    assert err.value.hint and "IPAM" in err.value.hint


def call(fn: Any, body: dict[str, Any]) -> tuple[int, str, Any]:
    class Conn:
        def read_body(self) -> bytes:
            return json.dumps(body).encode()

    req = Request("POST", "/NetworkDriver.X", {}, {}, Conn())  # type: ignore[arg-type]
    resp = rd.plugin_call(fn)(req)
    return resp.status, resp.content_type, json.loads(resp.payload())


def test_refusals_are_err_objects_with_the_plugin_media_type() -> None:
    def refuse(_body: Field) -> dict[str, Any]:
        raise InvalidArgument("no way", hint="try that")

    status, media, body = call(refuse, {})
    assert (status, media, body) == (200, rd.MEDIA_TYPE, {"Err": "no way (hint: try that)"})
    status, _, body = call(lambda b: {"Seen": b["A"].text()}, {"A": "x"})
    assert (status, body) == (200, {"Seen": "x"})
    status, _, body = call(lambda b: {"Bad": b["A"].integer(0, 1, 0)}, {"A": "x"})
    assert status == 200 and "expected an integer" in body["Err"]


def test_peer_names_fit_the_kernel_and_differ_per_endpoint() -> None:
    a, b = peer_name("a" * 64), peer_name("b" * 64)
    assert len(a) <= 15 and a.startswith("bxd") and a != b
