"""Parse the bodies of `POST /networks/create`, `/networks/{id}/connect` and `.../disconnect`.

The daemon's boundary, like create_request.py: every read goes through parsing.body.Field,
so a wrong type anywhere is a 400 naming its JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from boxnet.core.create_request import parse_endpoint_config
from boxnet.errors import InvalidArgument
from boxnet.model import EndpointRequest, NetworkRequest
from boxnet.parsing.body import Field


def parse_network_request(raw: object) -> NetworkRequest:
    from boxnet.parsing.names import validate_network_name

    body = Field(raw)
    body.obj()  # the root must be an object
    name = body["Name"].text()
    if not name:
        raise InvalidArgument("network create needs a Name", hint='{"Name": "mynet"}')
    validate_network_name(name)
    configs = body["IPAM"]["Config"].items()
    if len(configs) > 1:
        raise InvalidArgument("at most one IPv4 IPAM configuration is supported")
    subnet = gateway = ip_range = None
    aux: dict[str, str] = {}
    if configs:
        cfg = configs[0]
        subnet = _network(cfg["Subnet"])
        gateway = _address(cfg["Gateway"])
        ip_range = _network(cfg["IPRange"])
        for key, value in cfg["AuxiliaryAddresses"].entries():
            address = _address(value)
            if address is None:
                raise value.error("an IPv4 address")
            aux[key] = str(address)
        if (gateway or ip_range or aux) and subnet is None:
            raise InvalidArgument("--gateway, --ip-range and --aux-address need --subnet")
    return NetworkRequest(
        name=name,
        driver=body["Driver"].text(default="bridge"),
        subnet=subnet,
        gateway=gateway,
        ip_range=ip_range,
        aux_addresses=aux,
        internal=body["Internal"].flag(),
        attachable=body["Attachable"].flag(),
        ipv6=body["EnableIPv6"].flag(),
        options=body["Options"].string_map(),
        labels=body["Labels"].string_map(),
    )


def _network(f: Field) -> IPv4Network | None:
    text = f.text()
    try:
        return IPv4Network(text, strict=True) if text else None
    except ValueError as exc:
        raise InvalidArgument(f"invalid IPAM configuration: {f.path}: {exc}") from exc


def _address(f: Field) -> IPv4Address | None:
    text = f.text()
    try:
        return IPv4Address(text) if text else None
    except ValueError as exc:
        raise InvalidArgument(f"invalid IPAM configuration: {f.path}: {exc}") from exc


@dataclass(frozen=True)
class ConnectRequest:
    container: str
    endpoint: EndpointRequest
    force: bool


def parse_connect(raw: object, verb: str) -> ConnectRequest:
    """`network connect|disconnect`: {"Container", "EndpointConfig" (connect), "Force"}."""
    body = Field(raw)
    body.obj()
    container = body["Container"].text()
    if not container:
        raise InvalidArgument(f"network {verb} needs a Container (name or id)")
    endpoint = (
        parse_endpoint_config(body["EndpointConfig"])
        if verb == "connect"
        else EndpointRequest(network="")
    )
    return ConnectRequest(container, endpoint, body["Force"].flag())
