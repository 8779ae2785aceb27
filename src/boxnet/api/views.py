"""Docker Engine API JSON shapes for containers and networks (rendering only)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from boxnet.clock import ZERO_TIME, parse_rfc3339
from boxnet.model import Container, Endpoint, Network, State

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def _ports_map(ctl: Controller, c: Container) -> dict[str, list[dict[str, str]] | None]:
    ports: dict[str, list[dict[str, str]] | None] = {}
    for port, proto in c.spec.exposed:
        ports.setdefault(f"{port}/{proto}", None)
    for req in c.spec.ports:
        ports.setdefault(f"{req.container_port}/{req.proto}", None)
    for _cid, b, _ip in ctl.records.ports(c.id):
        entry = ports.get(b.key) or []
        entry.append({"HostIp": str(b.host_ip), "HostPort": str(b.host_port)})
        ports[b.key] = entry
    return ports


def _ipv6_fields(e: Endpoint | None) -> dict[str, Any]:
    """Docker's IPv6 fields of an endpoint (empty when it has no IPv6)."""
    iface = e.interface6 if e is not None else None
    gateway = e.gateway6 if e is not None else None
    return {
        "IPv6Gateway": str(gateway) if gateway else "",
        "GlobalIPv6Address": str(iface.ip) if iface else "",
        "GlobalIPv6PrefixLen": iface.network.prefixlen if iface else 0,
    }


def _endpoint_settings(net: Network | None, e: Endpoint) -> dict[str, Any]:
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": list(e.aliases) or None,
        "NetworkID": e.network_id,
        "EndpointID": e.id,
        "Gateway": str(e.gateway) if e.gateway else "",
        "IPAddress": str(e.ip),
        "IPPrefixLen": e.prefixlen,
        **_ipv6_fields(e),
        "MacAddress": e.mac,
        "DriverOpts": None,
        "InterfaceName": e.ifname,
        "HostInterfaceName": e.host_veth,
    }


def container_inspect(ctl: Controller, c: Container) -> dict[str, Any]:
    endpoints = ctl.records.endpoints(container_id=c.id)
    nets = {n.id: n for n in ctl.records.networks()}
    networks: dict[str, Any] = {}
    for e in endpoints:
        net = nets.get(e.network_id)
        networks[net.name if net else e.network_id] = _endpoint_settings(net, e)
    if c.spec.network_mode in ("host", "none") and c.state == State.RUNNING:
        net = next((n for n in nets.values() if n.name == c.spec.network_mode), None)
        networks[c.spec.network_mode] = {
            "NetworkID": net.id if net else "",
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "MacAddress": "",
        }
    if c.state == State.RUNNING:  # pipework attachments, as "pipework:HOSTIF" (docs/API.md)
        networks.update(ctl.lan.pipework.inspect(c.id))
    primary = endpoints[0] if endpoints else None
    raw = c.spec.raw
    host_config = dict(raw.get("HostConfig") or {})
    host_config.setdefault("NetworkMode", c.spec.network_mode)
    # The Docker SDK reads this to decide whether it may fetch logs after `run`.
    host_config.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    running = c.state == State.RUNNING
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.spec.cmd[0] if c.spec.cmd else "",
        "Args": list(c.spec.cmd[1:]),
        "State": {
            "Status": "paused" if c.paused and running else str(c.state),
            "Running": running,
            "Paused": c.paused and running,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": c.pid if running else 0,
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": c.started_at or ZERO_TIME,
            "FinishedAt": c.finished_at or ZERO_TIME,
        },
        "Image": c.spec.image_id or c.spec.image,  # sha256:<id>, as Docker
        "ResolvConfPath": str(ctl.paths.container_dir(c.id) / "etc" / "resolv.conf"),
        "HostnamePath": str(ctl.paths.container_dir(c.id) / "etc" / "hostname"),
        "HostsPath": str(ctl.paths.container_dir(c.id) / "etc" / "hosts"),
        "LogPath": str(ctl.containers.log_path(c.id)),
        "Name": "/" + c.name,
        "Driver": "overlay",
        "HostConfig": host_config,
        "Config": {
            "Hostname": c.hostname,
            "Env": list(c.spec.env),
            "Cmd": list(c.spec.cmd),
            "Image": c.spec.raw.get("Image") or c.spec.image,  # as given
            "Tty": c.spec.tty,
            "OpenStdin": c.spec.open_stdin,
            "ExposedPorts": {f"{p}/{proto}": {} for p, proto in c.spec.exposed} or None,
            "MacAddress": c.spec.mac_address or "",
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": c.id if c.netns_path else "",
            "SandboxKey": c.netns_path if running else "",
            "Ports": _ports_map(ctl, c) if running else {},
            "Gateway": str(primary.gateway or "") if primary else "",
            "IPAddress": str(primary.ip) if primary else "",
            "IPPrefixLen": primary.prefixlen if primary else 0,
            **_ipv6_fields(primary),
            "MacAddress": primary.mac if primary else "",
            "Networks": networks,
        },
    }


def _status_text(c: Container, now: float) -> str:
    if c.state == State.RUNNING:
        return "Up " + human_duration(now - parse_rfc3339(c.started_at))
    if c.state == State.CREATED:
        return "Created"
    return f"Exited ({c.exit_code}) {human_duration(now - parse_rfc3339(c.finished_at))} ago"


def human_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if minutes < 60:
        return "About a minute" if int(minutes) == 1 else f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 48:
        return "About an hour" if int(hours) == 1 else f"{int(hours)} hours"
    return f"{int(hours / 24)} days"


def container_summary(ctl: Controller, c: Container, now: float) -> dict[str, Any]:
    ports = []
    if c.state == State.RUNNING:
        for _cid, b, _ip in ctl.records.ports(c.id):
            ports.append(
                {
                    "IP": str(b.host_ip),
                    "PrivatePort": b.container_port,
                    "PublicPort": b.host_port,
                    "Type": b.proto,
                }
            )
    inspect = container_inspect(ctl, c)
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.spec.raw.get("Image") or c.spec.image,
        "ImageID": c.spec.image_id,
        "Command": shlex.join(c.spec.cmd),
        "Created": int(parse_rfc3339(c.created)),
        "Ports": ports,
        "Labels": {},
        "State": "paused" if c.paused and c.state == State.RUNNING else str(c.state),
        "Status": _status_text(c, now) + (" (Paused)" if c.paused else ""),
        "HostConfig": {"NetworkMode": c.spec.network_mode},
        "NetworkSettings": {"Networks": inspect["NetworkSettings"]["Networks"]},
    }


def network_inspect(ctl: Controller, net: Network) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    names = {c.id: c.name for c in ctl.records.containers()}
    for e in ctl.records.endpoints(network_id=net.id):
        containers[e.container_id] = {
            "Name": names.get(e.container_id, ""),
            "EndpointID": e.id,
            "MacAddress": e.mac,
            "IPv4Address": f"{e.ip}/{e.prefixlen}",
            "IPv6Address": str(e.interface6 or ""),
        }
    config = []
    for cfg in net.ipam:
        entry: dict[str, Any] = {"Subnet": str(cfg.subnet), "Gateway": str(cfg.gateway or "")}
        if cfg.ip_range is not None:
            entry["IPRange"] = str(cfg.ip_range)
        if cfg.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(cfg.aux_addresses)
        config.append(entry)
    options = dict(net.options)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": str(net.driver),
        "EnableIPv6": net.ipv6,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": options,
        "Labels": dict(net.labels),
    }
