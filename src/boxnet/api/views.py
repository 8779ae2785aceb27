"""Docker Engine API JSON shapes for containers and networks (rendering only)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from boxnet.clock import ZERO_TIME, parse_rfc3339
from boxnet.drivers.bridge import BRIDGE_PREFIX
from boxnet.model import OPT_BRIDGE_NAME, Container, Endpoint, EndpointRequest, Network, State

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


def _ipam_config(req: EndpointRequest | None) -> dict[str, Any] | None:
    """The static addresses asked for (`--ip`, `--ip6`), as Docker's IPAMConfig."""
    if req is None:
        return None
    out: dict[str, Any] = {"IPv4Address": str(req.ipv4)} if req.ipv4 else {}
    if req.ipv6:
        out["IPv6Address"] = str(req.ipv6)
    if req.link_local:
        return {**out, "LinkLocalIPs": list(req.link_local)}
    return out or None


def _endpoint_settings(
    net: Network | None, e: Endpoint | None, req: EndpointRequest | None, raw: Any
) -> dict[str, Any]:
    """Docker's EndpointSettings: e is the live endpoint (None while the container does not
    run: configured, empty addresses, as Docker shows it); req and raw what was asked for."""
    raw = raw if isinstance(raw, dict) else {}
    aliases = list(e.aliases) if e is not None else list(req.aliases) if req else []
    return {
        "IPAMConfig": _ipam_config(req),
        "Links": raw.get("Links") or None,
        "Aliases": aliases or None,
        "NetworkID": net.id if net else e.network_id if e else "",
        "EndpointID": e.id if e else "",
        "Gateway": str(e.gateway) if e and e.gateway else "",
        "IPAddress": str(e.interface4.ip) if e and e.interface4 else "",
        "IPPrefixLen": e.interface4.network.prefixlen if e and e.interface4 else 0,
        **_ipv6_fields(e),
        "MacAddress": e.mac if e else req.mac if req else "",
        "DriverOpts": raw.get("DriverOpts") or None,
        **({"InterfaceName": e.ifname, "HostInterfaceName": e.host_veth} if e else {}),
    }


def _networks(ctl: Controller, c: Container, endpoints: list[Endpoint]) -> dict[str, Any]:
    """NetworkSettings.Networks: live endpoints, and the networks c is configured for but not
    attached to (created or stopped containers)."""
    from boxnet.core.sandbox import mode_kind

    nets = {n.id: n for n in ctl.records.networks()}

    def lookup(ref: str) -> Network | None:
        ref = "bridge" if ref == "default" else ref
        return next((n for n in nets.values() if ref in (n.name, n.id)), None)

    requests: dict[str, EndpointRequest] = {}
    if mode_kind(c.spec.network_mode) == "network":
        for req in ctl.sandboxes.endpoint_requests(c):
            found = lookup(req.network)
            if found is not None:
                requests[found.id] = req
    raw_configs = (c.spec.raw.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if not isinstance(raw_configs, dict):
        raw_configs = {}

    def raw_for(net: Network | None) -> Any:
        if net is None:
            return None
        keys = (net.name, net.id) + (("default",) if net.name == "bridge" else ())
        return next((raw_configs[k] for k in keys if k in raw_configs), None)

    networks: dict[str, Any] = {}
    for e in endpoints:
        net = nets.get(e.network_id)
        settings = _endpoint_settings(net, e, requests.get(e.network_id), raw_for(net))
        networks[net.name if net else e.network_id] = settings
    for net_id, req in requests.items():
        net = nets[net_id]
        networks.setdefault(net.name, _endpoint_settings(net, None, req, raw_for(net)))
    if c.spec.network_mode in ("host", "none"):
        net = lookup(c.spec.network_mode)
        networks[c.spec.network_mode] = _endpoint_settings(net, None, None, None)
    return networks


def _mounts(ctl: Controller, c: Container) -> list[dict[str, Any]]:
    mounts = []
    for b in c.spec.binds:
        volume = ctl.containers.volumes.name_of(b.source)
        if volume is None:
            mounts.append({"Type": "bind", "Source": b.source, "Destination": b.target,
                           "Mode": "ro" if b.read_only else "", "RW": not b.read_only,
                           "Propagation": "rprivate"})  # fmt: skip
        else:  # moby's view of a local volume's mount
            mounts.append({"Type": "volume", "Name": volume, "Source": b.source,
                           "Destination": b.target, "Driver": "local", "Mode": "z",
                           "RW": not b.read_only, "Propagation": ""})  # fmt: skip
    return mounts


def container_inspect(ctl: Controller, c: Container) -> dict[str, Any]:
    endpoints = ctl.records.endpoints(container_id=c.id)
    networks = _networks(ctl, c, endpoints)
    if c.state == State.RUNNING:  # pipework attachments, as "pipework:HOSTIF" (docs/API.md)
        networks.update(ctl.lan.pipework.inspect(c.id))
    primary = endpoints[0] if endpoints else None
    raw = c.spec.raw
    host_config = dict(raw.get("HostConfig") or {})
    host_config.setdefault("NetworkMode", c.spec.network_mode)
    # The Docker SDK reads this to decide whether it may fetch logs after `run`.
    host_config["Runtime"] = host_config.get("Runtime") or "runc"  # moby's default runtime
    log_config = dict(host_config.get("LogConfig") or {})
    host_config["LogConfig"] = {
        "Type": log_config.get("Type") or "json-file",
        "Config": log_config.get("Config") or {},
    }
    spec = c.spec
    host_config["Binds"] = [
        f"{b.source}:{b.target}" + (":ro" if b.read_only else "") for b in spec.binds
    ] or None
    host_config["RestartPolicy"] = {
        "Name": spec.restart_policy,
        "MaximumRetryCount": spec.restart_max,
    }
    host_config["ReadonlyRootfs"] = spec.read_only
    host_config["Tmpfs"] = dict(spec.tmpfs) or None
    host_config["Links"] = [f"/{n}:/{c.name}/{a}" for n, a in spec.links] or None
    host_config.setdefault("AutoRemove", spec.auto_remove)
    running = c.state == State.RUNNING
    restarting = ctl.containers.restarts.pending(c.id)
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.spec.cmd[0] if c.spec.cmd else "",
        "Args": list(c.spec.cmd[1:]),
        "State": {
            "Status": "restarting"
            if restarting
            else "paused"
            if c.paused and running
            else str(c.state),
            "Running": running,
            "Paused": c.paused and running,
            "Restarting": restarting,
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
        "RestartCount": c.restart_count,
        "Mounts": _mounts(ctl, c),
        "Driver": "overlay",
        "HostConfig": host_config,
        "Config": {
            "Hostname": c.hostname,
            "Domainname": spec.domainname,
            "User": spec.user,
            "WorkingDir": spec.workdir,
            "Labels": dict(spec.labels),
            **({"StopSignal": spec.stop_signal} if spec.stop_signal else {}),
            **({"StopTimeout": spec.stop_timeout} if spec.stop_timeout is not None else {}),
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
            "IPAddress": str(primary.interface4.ip) if primary and primary.interface4 else "",
            "IPPrefixLen": (
                primary.interface4.network.prefixlen if primary and primary.interface4 else 0
            ),
            **_ipv6_fields(primary),
            "MacAddress": primary.mac if primary else "",
            "Networks": networks,
        },
    }


def _status_text(c: Container, now: float, restarting: bool = False) -> str:
    if c.state == State.RUNNING:
        return "Up " + human_duration(now - parse_rfc3339(c.started_at))
    if c.state == State.CREATED:
        return "Created"
    word = "Restarting" if restarting else "Exited"
    return f"{word} ({c.exit_code}) {human_duration(now - parse_rfc3339(c.finished_at))} ago"


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
    restarting = ctl.containers.restarts.pending(c.id)
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.spec.raw.get("Image") or c.spec.image,
        "ImageID": c.spec.image_id,
        "Command": shlex.join(c.spec.cmd),
        "Created": int(parse_rfc3339(c.created)),
        "Ports": ports,
        "Labels": dict(c.spec.labels),
        "Mounts": _mounts(ctl, c),
        "State": "restarting"
        if restarting
        else "paused"
        if c.paused and c.state == State.RUNNING
        else str(c.state),
        "Status": _status_text(c, now, restarting) + (" (Paused)" if c.paused else ""),
        "HostConfig": {"NetworkMode": c.spec.network_mode},
        "NetworkSettings": {"Networks": inspect["NetworkSettings"]["Networks"]},
    }


def network_inspect(ctl: Controller, net: Network) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    names = {c.id: c.name for c in ctl.records.containers()}
    names.update(ctl.external.display_names())  # CNI attachments (core/external.py)
    for e in ctl.records.endpoints(network_id=net.id):
        containers[e.container_id] = {
            "Name": names.get(e.container_id, ""),
            "EndpointID": e.id,
            "MacAddress": e.mac,
            "IPv4Address": str(e.interface4 or ""),
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
    if not net.predefined and options.get(OPT_BRIDGE_NAME) == f"{BRIDGE_PREFIX}{net.id[:12]}":
        # The driver's own choice, not the user's: Docker does not show it, and compose, which
        # compares a network's options with its own, would otherwise recreate the network.
        del options[OPT_BRIDGE_NAME]
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": ctl.drivers.scope(net.driver),
        "Driver": str(net.driver),
        "EnableIPv4": net.family(4) is not None,
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
