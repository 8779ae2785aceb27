"""Parse a Docker `POST /containers/create` body into a ContainerSpec, validating everything.

This is the daemon's boundary: the CLI validates too, but any HTTP client may send anything.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from boxnet.errors import InvalidArgument
from boxnet.model import ContainerSpec, EndpointRequest, PortRequest
from boxnet.parsing import logopts
from boxnet.parsing.body import Field


def parse_endpoint_config(cfg: Field, network: str = "") -> EndpointRequest:
    """Docker's EndpointConfig, shared by `containers/create` (one per network in
    NetworkingConfig.EndpointsConfig) and `networks/{id}/connect`:
    {"IPAMConfig": {"IPv4Address": "..."}, "Aliases": ["..."]}."""
    from boxnet.parsing import names

    address = cfg["IPAMConfig"]["IPv4Address"]
    text = address.text()
    try:
        ipv4 = IPv4Address(text) if text else None
    except ValueError as exc:
        raise InvalidArgument(
            f"{address.path}: invalid IPv4 address {text!r}", hint="for example 172.20.0.10"
        ) from exc
    address6 = cfg["IPAMConfig"]["IPv6Address"]
    text6 = address6.text()
    try:
        ipv6 = IPv6Address(text6) if text6 else None
    except ValueError as exc:
        raise InvalidArgument(
            f"{address6.path}: invalid IPv6 address {text6!r}", hint="for example 2001:db8:1::10"
        ) from exc
    aliases = tuple(
        names.validate_dns_name(a, kind="network alias") for a in cfg["Aliases"].strings()
    )
    mac = cfg["MacAddress"].text()
    if mac and not names.is_unicast_mac(mac):
        raise InvalidArgument(f"{cfg['MacAddress'].path}: invalid MAC address {mac!r}",
                              hint="use the form 02:42:ac:11:00:02")  # fmt: skip
    link_local = []
    for item in cfg["IPAMConfig"]["LinkLocalIPs"].items():
        try:
            local = ip_address(item.text())
        except ValueError:
            local = None
        if local is None or not local.is_link_local:
            raise InvalidArgument(f"{item.path}: invalid link-local address {item.value!r}",
                                  hint="169.254.0.0/16 or fe80::/10")  # fmt: skip
        link_local.append(str(local))
    return EndpointRequest(network=network, ipv4=ipv4, ipv6=ipv6, aliases=aliases, mac=mac,
                           link_local=tuple(link_local))  # fmt: skip


def mode_kind_of(mode: str) -> str:
    from boxnet.core.sandbox import mode_kind

    return mode_kind(mode)


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
    if spec.links and mode_kind_of(mode) != "network":
        kind = "container" if mode.startswith("container:") else mode
        raise InvalidArgument(
            f"conflicting options: {kind} type networking can't be used with links."
            " This would result in undefined behavior",
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


def tmpfs_options(mount: Field) -> str:
    """A Mounts entry of Type tmpfs as --tmpfs options: ro, size=BYTES, mode=OCTAL."""
    size = mount["TmpfsOptions"]["SizeBytes"].integer(0, 1 << 50, 0)
    mode = mount["TmpfsOptions"]["Mode"].integer(0, 0o7777, 0)
    options = ["ro"] if mount["ReadOnly"].flag() else []
    options += [f"size={size}"] if size else []
    options += [f"mode={mode:o}"] if mode else []
    return ",".join(options)


def parse_process_flags(body: Field) -> dict[str, Any]:
    """The ContainerSpec fields of `-v/--mount`, `-u`, `-w`, `--read-only`, `--domainname`,
    `--label`, `--restart` and `--link` (Config.* and HostConfig.*), validated."""
    from boxnet.parsing import names, runflags

    host_config = body["HostConfig"]
    binds = [runflags.parse_bind(b) for b in host_config["Binds"].strings(nul_free=True)]
    mounted_tmpfs = {}
    for item in host_config["Mounts"].items():
        if item["Type"].text() == "tmpfs":  # {"Target", "TmpfsOptions": {"SizeBytes", "Mode"}}
            path, text = runflags.parse_tmpfs(
                item["Target"].text(nul_free=True), tmpfs_options(item)
            )
            mounted_tmpfs[path] = text
            continue
        binds.append(
            runflags.mount_to_bind(
                item["Type"].text(default="volume"),
                item["Source"].text(nul_free=True),
                item["Target"].text(nul_free=True),
                item["ReadOnly"].flag(),
                item["VolumeOptions"]["Subpath"].text(nul_free=True),
            )
        )
        runflags.check_propagation(item["BindOptions"]["Propagation"].text())
    targets = [b.target for b in binds]
    for target in targets:
        if targets.count(target) > 1:
            raise InvalidArgument(f"Duplicate mount point: {target}")
    from boxnet.model import BindMount

    for path in body["Volumes"].obj():  # Config.Volumes not bound: anonymous volumes
        target = runflags.parse_bind(path).target
        if target not in targets:
            binds.append(BindMount(source="", target=target))
            targets.append(target)
    user = body["User"].text(nul_free=True)
    workdir = body["WorkingDir"].text(nul_free=True)
    domainname = body["Domainname"].text()
    if domainname:
        names.validate_dns_name(domainname, kind="domain name")
    policy = host_config["RestartPolicy"]
    restart = runflags.check_restart(
        policy["Name"].text(default="no"), policy["MaximumRetryCount"].integer(0, 10**6, 0)
    )
    if restart[0] != "no" and host_config["AutoRemove"].flag():
        raise InvalidArgument(
            "can't create 'AutoRemove' container with restart policy",
            hint="--rm and --restart do not go together: drop one",
        )
    links = []
    texts = list(host_config["Links"].strings())
    for _net, cfg in body["NetworkingConfig"]["EndpointsConfig"].entries():
        if isinstance(cfg.value, dict):  # P10: {"<net>": null} happens
            texts += cfg["Links"].strings()  # links on a user network: the same hosts lines
    for text in texts:
        # The API's form is "/target:/container/alias"; users type "target:alias".
        name, _, alias = text.partition(":")
        links.append(runflags.parse_link(f"{name}:{alias.rsplit('/', 1)[-1]}" if alias else name))
    stop_signal = body["StopSignal"].text()
    if stop_signal:
        from boxnet.core.procs import signal_number

        signal_number(stop_signal)  # an unknown name is a 400 now, not at stop
    timeout = body["StopTimeout"]
    tmpfs = dict(
        runflags.parse_tmpfs(target, item.text()) for target, item in host_config["Tmpfs"].entries()
    )
    tmpfs.update(mounted_tmpfs)
    if set(tmpfs) & set(targets):
        raise InvalidArgument(f"Duplicate mount point: {sorted(set(tmpfs) & set(targets))[0]}")
    return {
        "tmpfs": tmpfs,
        "stop_signal": stop_signal,
        "stop_timeout": None if timeout.absent else timeout.integer(-1, 86400 * 365, 10),
        "binds": tuple(binds),
        "user": runflags.parse_user(user) if user else "",
        "workdir": runflags.parse_workdir(workdir) if workdir else "",
        "read_only": host_config["ReadonlyRootfs"].flag(),
        "domainname": domainname,
        "labels": body["Labels"].string_map(),
        "restart_policy": restart[0],
        "restart_max": restart[1],
        "links": tuple(links),
    }


def parse_create(raw: object) -> ContainerSpec:
    from boxnet.core.create_unsupported import refuse_unsupported
    from boxnet.parsing import dns, hosts, names, publish

    body = Field(raw)
    body.obj()  # the root must be an object
    refuse_unsupported(body)
    image = body["Image"].text(required=True)
    image = image.removesuffix(":latest")  # not split(":"): "registry:5000/x:latest"
    argv = body["Entrypoint"].strings(True, nul_free=True) + body["Cmd"].strings(
        True, nul_free=True
    )
    if not argv:
        argv = ("sh",)
    env = body["Env"].strings(allow_single=True, nul_free=True)
    for item in env:
        if not item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable {item!r}: expected KEY=VALUE")
    hostname = body["Hostname"].optional_text()
    if hostname is not None:
        names.validate_hostname(hostname)
    host_config = body["HostConfig"]
    mode = host_config["NetworkMode"].text(default="bridge")
    if mode == "default":
        mode = "bridge"
    mac = body["MacAddress"].optional_text()
    if mac is not None and not names.is_unicast_mac(mac):
        raise InvalidArgument(f"invalid MAC address {mac!r}", hint="use the form 02:42:ac:11:00:02")

    exposed_raw = body["ExposedPorts"].obj()
    bindings_raw = host_config["PortBindings"].obj()
    publish_all = host_config["PublishAllPorts"].flag()
    port_specs = publish.from_api(bindings_raw, exposed_raw, publish_all)
    ports: list[PortRequest] = []
    for pspec in port_specs:
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
                    host_ip=pspec.host_ip,
                    host_port_start=start,
                    host_port_end=end,
                )
            )
    exposed = []
    for key in exposed_raw:
        for port, proto in publish.parse_expose(key):
            exposed.append((port, proto))

    dns_servers = tuple(str(dns.parse_dns(s)) for s in host_config["Dns"].strings(True))
    dns_search = tuple(dns.parse_dns_search(s) for s in host_config["DnsSearch"].strings(True))
    dns_opts = tuple(dns.parse_dns_option(s) for s in host_config["DnsOptions"].strings(True))
    extra_hosts = host_config["ExtraHosts"].strings(allow_single=True)
    for entry in extra_hosts:
        hosts.parse_add_host(entry)

    endpoints = [
        # The docker CLI 28 names the NetworkMode network "default".
        parse_endpoint_config(cfg, mode if net_name == "default" else net_name)
        for net_name, cfg in body["NetworkingConfig"]["EndpointsConfig"].entries()
    ]

    log_max_size, log_max_files = logopts.from_log_config(host_config["LogConfig"].value)
    spec = ContainerSpec(
        image=image,
        cmd=argv,
        env=env,
        hostname=hostname,
        tty=body["Tty"].flag(),
        open_stdin=body["OpenStdin"].flag(),
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
        auto_remove=host_config["AutoRemove"].flag(),
        log_max_size=log_max_size,
        log_max_files=log_max_files,
        raw=dict(body.obj()),
        **parse_process_flags(body),
    )
    on_default = mode == "bridge" or any(e.network in ("bridge", "default") for e in endpoints)
    if on_default and any(e.ipv4 or e.ipv6 for e in endpoints):
        raise InvalidArgument(
            "user specified IP address is supported on user defined networks only",
            hint="create a network (boxnet network create --subnet ...) and use --network",
        )
    if on_default and any(e.aliases for e in endpoints):
        raise InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks",
            hint="create a network (boxnet network create NAME) and use --network NAME",
        )
    conflicting_options(mode, spec)
    return spec
