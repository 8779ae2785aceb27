"""Parse a Docker `POST /containers/create` body into a ContainerSpec, validating everything.

This is the daemon's boundary: the CLI validates too, but any HTTP client may send anything.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from boxnet.errors import InvalidArgument
from boxnet.model import ContainerSpec, EndpointRequest, PortRequest


def _list_of_str(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {key}: expected a list of strings")
    return tuple(value)


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid {key}: expected true or false, got {value!r}")
    return value


def _dict(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {key}: expected an object")
    return value


def conflicting_options(mode: str, spec: ContainerSpec) -> None:
    """Docker's "conflicting options" errors for modes that share another namespace."""
    if mode.startswith("container:"):
        if spec.ports or spec.publish_all or spec.exposed:
            raise InvalidArgument(
                "conflicting options: port publishing and the container type network mode",
                hint="publish the ports on the container whose network is joined",
            )
        if spec.dns or spec.dns_search or spec.dns_options:
            raise InvalidArgument("conflicting options: dns and the network mode")
        if spec.hostname:
            raise InvalidArgument("conflicting options: hostname and the network mode")
        if spec.mac_address:
            raise InvalidArgument("conflicting options: mac-address and the network mode")
        if spec.extra_hosts:
            raise InvalidArgument(
                "conflicting options: custom host-to-IP mapping and the network mode"
            )
    if mode in ("host", "none") and (spec.ports or spec.publish_all):
        if mode == "host":
            # Docker ignores -p with --net host (with a warning); refusing is clearer.
            raise InvalidArgument(
                "conflicting options: port publishing and the host network mode",
                hint="with --net host the container's ports are the host's: drop -p",
            )
        raise InvalidArgument("conflicting options: port publishing and the none network mode")
    if mode == "host" and spec.mac_address:
        raise InvalidArgument("conflicting options: mac-address and the network mode")


def parse_create(body: object) -> ContainerSpec:
    from boxnet.parsing import dns, hosts, names, publish

    if not isinstance(body, dict):
        raise InvalidArgument("invalid create request: expected a JSON object")
    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise InvalidArgument("invalid create request: Image is required")
    image = image.split(":", 1)[0] if image.endswith(":latest") else image
    cmd = _list_of_str(body, "Cmd")
    entrypoint = _list_of_str(body, "Entrypoint")
    argv = entrypoint + cmd
    if not argv:
        argv = ("sh",)
    env = _list_of_str(body, "Env")
    for item in env:
        if not item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable {item!r}: expected KEY=VALUE")
    hostname = body.get("Hostname") or None
    if hostname is not None:
        if not isinstance(hostname, str):
            raise InvalidArgument("invalid Hostname: expected a string")
        names.validate_hostname(hostname)
    host_config = _dict(body, "HostConfig")
    mode = host_config.get("NetworkMode") or "bridge"
    if not isinstance(mode, str):
        raise InvalidArgument("invalid NetworkMode: expected a string")
    if mode == "default":
        mode = "bridge"
    mac = body.get("MacAddress") or None
    if mac is not None and not _valid_mac(mac):
        raise InvalidArgument(f"invalid MAC address {mac!r}", hint="use the form 02:42:ac:11:00:02")

    exposed_raw = _dict(body, "ExposedPorts")
    bindings_raw = _dict(host_config, "PortBindings")
    publish_all = _bool(host_config, "PublishAllPorts")
    port_specs = publish.from_api(bindings_raw, exposed_raw, publish_all)
    ports: list[PortRequest] = []
    for pspec in port_specs:
        if pspec.host_ip is not None and pspec.host_ip.version == 6:
            raise InvalidArgument(
                f"cannot publish on [{pspec.host_ip}]: IPv6 networks are not supported yet",
                hint="publish on an IPv4 address or on all addresses",
            )
        for offset, cport in enumerate(
            range(pspec.container_port_start, pspec.container_port_end + 1)
        ):
            start = pspec.host_port_start
            end = pspec.host_port_end
            if start is not None and pspec.container_port_end > pspec.container_port_start:
                start = end = start + offset  # HSTART-HEND:CSTART-CEND pairs one to one
            ports.append(
                PortRequest(
                    container_port=cport,
                    proto=pspec.proto,
                    host_ip=pspec.host_ip,  # type: ignore[arg-type]
                    host_port_start=start,
                    host_port_end=end,
                )
            )
    exposed = []
    for key in exposed_raw:
        for port, proto in publish.parse_expose(key):
            exposed.append((port, proto))

    dns_servers = tuple(str(dns.parse_dns(s)) for s in _list_of_str(host_config, "Dns"))
    dns_search = tuple(dns.parse_dns_search(s) for s in _list_of_str(host_config, "DnsSearch"))
    dns_opts = tuple(dns.parse_dns_option(s) for s in _list_of_str(host_config, "DnsOptions"))
    extra_hosts = _list_of_str(host_config, "ExtraHosts")
    for entry in extra_hosts:
        hosts.parse_add_host(entry)

    endpoints = []
    networking = _dict(body, "NetworkingConfig")
    for net_name, cfg in _dict(networking, "EndpointsConfig").items():
        cfg = cfg or {}
        if not isinstance(cfg, dict):
            raise InvalidArgument(f"invalid EndpointsConfig for {net_name}: expected an object")
        if net_name == "default":  # the docker CLI 28 names the NetworkMode network so
            net_name = mode
        ipam = cfg.get("IPAMConfig") or {}
        ip_text = ipam.get("IPv4Address") if isinstance(ipam, dict) else None
        try:
            ipv4 = IPv4Address(ip_text) if ip_text else None
        except ValueError as exc:
            raise InvalidArgument(f"invalid IPv4 address {ip_text!r} for --ip") from exc
        aliases = tuple(
            names.validate_dns_name(a, kind="network alias") for a in cfg.get("Aliases") or []
        )
        endpoints.append(EndpointRequest(network=net_name, ipv4=ipv4, aliases=aliases))

    spec = ContainerSpec(
        image=image,
        cmd=argv,
        env=env,
        hostname=hostname,
        tty=_bool(body, "Tty"),
        open_stdin=_bool(body, "OpenStdin"),
        network_mode=mode,
        mac_address=mac,
        endpoints=tuple(endpoints),
        ports=tuple(ports),
        exposed=tuple(exposed),
        publish_all=publish_all,
        dns=dns_servers,
        dns_search=dns_search,
        dns_options=dns_opts,
        extra_hosts=extra_hosts,
        auto_remove=_bool(host_config, "AutoRemove"),
        raw=dict(body),
    )
    if any(e.ipv4 for e in endpoints) and mode in ("bridge",):
        raise InvalidArgument(
            "user specified IP address is supported only when connecting to networks with user"
            " configured subnets",
            hint="create a network (boxnet network create --subnet ...) and use --network",
        )
    conflicting_options(mode, spec)
    return spec


def _valid_mac(mac: object) -> bool:
    if not isinstance(mac, str):
        return False
    parts = mac.split(":")
    return len(parts) == 6 and all(
        len(p) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in p) for p in parts
    )
