"""Parse the bodies of `POST /networks/create`, `/networks/{id}/connect` and `.../disconnect`.

The daemon's boundary, like create_request.py: every read goes through parsing.body.Field,
so a wrong type anywhere is a 400 naming its JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

from boxnet.core.create_request import parse_endpoint_config
from boxnet.errors import InvalidArgument
from boxnet.model import EndpointRequest, IPAddress, IPAMConfig, IPNetwork, NetworkRequest
from boxnet.parsing.body import Field


def parse_network_request(raw: object) -> NetworkRequest:
    from boxnet.parsing.names import validate_network_name

    body = Field(raw)
    body.obj()  # the root must be an object
    name = body["Name"].text()
    if not name:
        raise InvalidArgument("network create needs a Name", hint='{"Name": "mynet"}')
    validate_network_name(name)
    configs = [_ipam_config(cfg) for cfg in body["IPAM"]["Config"].items()]
    by_family: dict[int, IPAMConfig] = {}
    for cfg in configs:
        if cfg.version in by_family:
            raise InvalidArgument(
                f"at most one IPv{cfg.version} IPAM configuration is supported:"
                f" {by_family[cfg.version].subnet} and {cfg.subnet}",
                hint="give one --subnet per address family",
            )
        by_family[cfg.version] = cfg
    ipv4 = by_family.get(4, IPAMConfig(IPv4Network("0.0.0.0/0")))  # the /0: none given
    enable_ipv4 = body["EnableIPv4"]
    return NetworkRequest(
        name=name,
        driver=body["Driver"].text(default="bridge"),
        subnet=ipv4.subnet if isinstance(ipv4.subnet, IPv4Network) and 4 in by_family else None,
        gateway=ipv4.gateway if isinstance(ipv4.gateway, IPv4Address) else None,
        ip_range=ipv4.ip_range if isinstance(ipv4.ip_range, IPv4Network) else None,
        aux_addresses=dict(ipv4.aux_addresses),
        internal=body["Internal"].flag(),
        attachable=body["Attachable"].flag(),
        ipv6=body["EnableIPv6"].flag(),
        ipv4=enable_ipv4.flag() if enable_ipv4.value is not None else True,
        ipam6=by_family.get(6),
        options=body["Options"].string_map(),
        labels=body["Labels"].string_map(),
    )


def _ipam_config(cfg: Field) -> IPAMConfig:
    """One entry of IPAM.Config; its family is its subnet's, and everything in it must match."""
    subnet = _network(cfg["Subnet"])
    gateway = _address(cfg["Gateway"])
    ip_range = _network(cfg["IPRange"])
    aux: dict[str, str] = {}
    for key, value in cfg["AuxiliaryAddresses"].entries():
        address = _address(value)
        if address is None:
            raise value.error("an IP address")
        aux[key] = str(address)
    if subnet is None:
        raise InvalidArgument("--gateway, --ip-range and --aux-address need --subnet")
    mixed = [f"--{what} {v}" for what, v in (("gateway", gateway), ("ip-range", ip_range))
             if v is not None and v.version != subnet.version]  # fmt: skip
    if mixed:
        raise InvalidArgument(
            f"invalid {mixed[0]}: not of the same address family as --subnet {subnet}"
        )
    return IPAMConfig(subnet, gateway, ip_range, aux)


def _network(f: Field) -> IPNetwork | None:
    text = f.text()
    try:
        return ip_network(text, strict=True) if text else None
    except ValueError as exc:
        raise InvalidArgument(f"invalid IPAM configuration: {f.path}: {exc}") from exc


def _address(f: Field) -> IPAddress | None:
    text = f.text()
    try:
        return ip_address(text) if text else None
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
