"""Docker Engine API routes (and boxnet's extensions), mapped onto the controller."""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from boxnet import API_VERSION, __version__
from boxnet.api import streams
from boxnet.api.server import Request, Response, Router
from boxnet.api.views import container_inspect, container_summary, network_inspect
from boxnet.core.create_request import parse_create
from boxnet.core.networks import NetworkRequest
from boxnet.errors import InvalidArgument, NotFound, NotModified
from boxnet.model import EndpointRequest, State

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def build_router(ctl: Controller) -> Router:
    from boxnet.api import attach

    r = Router()
    attach.register(r, ctl)  # first: ping, start, wait, attach and exec start (hijacked)
    c = ctl.containers

    # -- system ---------------------------------------------------------------------------------
    def version(_req: Request) -> Response:
        return Response(
            200,
            {
                "Version": __version__,
                "ApiVersion": API_VERSION,
                "MinAPIVersion": "1.24",
                "Os": "linux",
                "Arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                    platform.machine(), platform.machine()
                ),
                "KernelVersion": platform.release(),
                "Components": [{"Name": "boxnetd", "Version": __version__}],
            },
        )

    def info(_req: Request) -> Response:
        all_c = ctl.records.containers()
        running = sum(1 for x in all_c if x.state == State.RUNNING)
        from boxnet.runtime import images

        return Response(
            200,
            {
                "ID": "",
                "Containers": len(all_c),
                "ContainersRunning": running,
                "ContainersPaused": 0,
                "ContainersStopped": len(all_c) - running,
                "Images": len(images.list_images(ctl.paths)),
                "Name": socket.gethostname(),
                "ServerVersion": __version__,
                "DockerRootDir": str(ctl.paths.data_root),
                "ExecRoot": str(ctl.paths.exec_root),
                "FirewallBackend": {
                    "Driver": ctl.firewall.name if ctl.firewall else "none",
                    # Docker's shape: Info is a list of [label, value] pairs.
                    "Info": [list(x) for x in ctl.firewall.details()] if ctl.firewall else [],
                },
                "IPv4Forwarding": ctl.config.ip_forward,
                "BridgeNfIptables": False,
                "KernelVersion": platform.release(),
                "OperatingSystem": "linux",
            },
        )

    def system_gc(_req: Request) -> Response:
        from boxnet.core.reconcile import collect_garbage

        with ctl.lock:
            return Response(200, collect_garbage(ctl).to_json())

    def system_reload(_req: Request) -> Response:
        with ctl.lock:
            ctl.networks.sync_firewall()
        return Response(200, {})

    def metrics_get(_req: Request) -> Response:
        from boxnet.core import metrics

        return Response(200, metrics.snapshot())

    r.add("GET", "/boxnet/metrics", metrics_get)
    r.add("POST", "/boxnet/system/gc", system_gc)
    r.add("POST", "/boxnet/system/reload", system_reload)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)

    # -- images ---------------------------------------------------------------------------------
    def image_list(_req: Request) -> Response:
        from boxnet.runtime import images

        out = []
        for img in images.list_images(ctl.paths):
            out.append(
                {
                    "Id": "sha256:" + img.name,
                    "RepoTags": [f"{img.name}:latest"],
                    "Created": int(img.created),
                    "Size": img.size_bytes,
                }
            )
        return Response(200, out)

    def image_import(req: Request) -> Response:
        from pathlib import Path

        from boxnet.runtime import images

        body = req.json()
        source, name = body.get("Source"), body.get("Name")
        if not isinstance(source, str) or not isinstance(name, str):
            raise InvalidArgument("import needs Source (a path) and Name")
        with ctl.lock:
            images.import_image(ctl.paths, Path(source), name)
        return Response(200, {"Name": name})

    r.add("GET", "/images/json", image_list)
    r.add("POST", "/boxnet/images/import", image_import)

    # -- containers -----------------------------------------------------------------------------
    def create(req: Request) -> Response:
        spec = parse_create(req.json())
        created = c.create(spec, req.query.get("name") or None)
        return Response(201, {"Id": created.id, "Warnings": []})

    def attach_start(req: Request) -> Response:
        target = c.find(req.params["id"])  # 404 before the 100 Continue
        fds = req.handler.receive_stdio()
        try:
            started = c.start(target.id, fds)
        finally:
            for fd in fds:
                os.close(fd)
        return Response(200, {"Id": started.id})

    def stop(req: Request) -> Response:
        timeout = float(req.query["t"]) if req.query.get("t") else None
        try:
            c.stop(req.params["id"], timeout)
        except NotModified:
            return Response(304)
        return Response(204)

    def restart(req: Request) -> Response:
        timeout = float(req.query["t"]) if req.query.get("t") else None
        c.restart(req.params["id"], timeout)
        return Response(204)

    def kill(req: Request) -> Response:
        c.kill(req.params["id"], req.query.get("signal") or "SIGKILL")
        return Response(204)

    def remove(req: Request) -> Response:
        c.remove(req.params["id"], req.flag("force"))
        return Response(204)

    def listing(req: Request) -> Response:
        now = time.time()
        show_all = req.flag("all")
        out = [
            container_summary(ctl, x, now) for x in c.all() if show_all or x.state == State.RUNNING
        ]
        return Response(200, out)

    def inspect(req: Request) -> Response:
        return Response(200, container_inspect(ctl, c.find(req.params["id"])))

    def logs(req: Request) -> Response:
        target = c.find(req.params["id"])
        path = c.log_path(target.id)
        tail = req.query.get("tail", "all")
        follow = req.flag("follow")

        def stream() -> Iterator[bytes]:
            try:
                fh = open(path, "rb")
            except FileNotFoundError:
                return
            with fh:
                data = fh.read()
                if tail not in ("all", ""):
                    lines = data.splitlines(keepends=True)
                    data = b"".join(lines[-int(tail) :]) if int(tail) > 0 else b""
                yield data
                while follow:
                    chunk = fh.read()
                    if chunk:
                        yield chunk
                        continue
                    current = ctl.records.container(target.id)
                    if current is None or current.state != State.RUNNING:
                        yield fh.read()
                        return
                    time.sleep(0.1)

        # Docker's framing (stdout frames) unless the container has a TTY: the Docker SDK and
        # CLI demultiplex it, and so does boxnet's CLI (by the Content-Type).
        tty = target.spec.tty
        content_type = streams.RAW if tty else streams.MULTIPLEXED

        def framed() -> Iterator[bytes]:
            for chunk in stream():
                if chunk:
                    yield chunk if tty else streams.frame(streams.STDOUT, chunk)

        if not follow:
            return Response(200, b"".join(framed()), content_type=content_type)
        return Response(200, stream=framed(), content_type=content_type)

    def exec_create(req: Request) -> Response:
        body = req.json()
        argv = body.get("Cmd") or []
        env = body.get("Env") or []
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise InvalidArgument("invalid Cmd: expected a list of strings")
        if not isinstance(env, list) or not all(isinstance(a, str) for a in env):
            raise InvalidArgument("invalid Env: expected a list of strings")
        exec_id = c.exec_create(
            req.params["id"],
            tuple(argv),
            tuple(env),
            str(body.get("WorkingDir") or "/"),
            bool(body.get("Tty")),
            stdin=bool(body.get("AttachStdin")),
        )
        return Response(201, {"Id": exec_id})

    def exec_attach_start(req: Request) -> Response:
        if req.params["id"] not in c.execs:
            raise NotFound(f"No such exec instance: {req.params['id']}")
        fds = req.handler.receive_stdio()
        try:
            code = c.exec_start(req.params["id"], fds)
        finally:
            for fd in fds:
                os.close(fd)
        return Response(200, {"ExitCode": code})

    def exec_inspect(req: Request) -> Response:
        exec_id = req.params["id"]
        code = c.exec_results.get(exec_id)
        return Response(
            200,
            {
                "ID": exec_id,
                "Running": code is None and exec_id not in c.execs,
                "ExitCode": code,
                "ProcessConfig": {},
            },
        )

    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", listing)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/boxnet/containers/{id}/attach-start", attach_start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("DELETE", "/containers/{id}", remove)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("POST", "/containers/{id}/exec", exec_create)
    r.add("POST", "/boxnet/exec/{id}/attach-start", exec_attach_start)
    r.add("GET", "/exec/{id}/json", exec_inspect)

    # -- networks -------------------------------------------------------------------------------
    def network_list(_req: Request) -> Response:
        return Response(200, [network_inspect(ctl, n) for n in ctl.networks.all()])

    def network_get(req: Request) -> Response:
        return Response(200, network_inspect(ctl, ctl.networks.find(req.params["id"])))

    def network_create(req: Request) -> Response:
        with ctl.lock:
            net = ctl.networks.create(parse_network_request(req.json()))
            warning = ctl.networks.last_warning
        return Response(201, {"Id": net.id, "Warning": warning})

    def network_remove(req: Request) -> Response:
        with ctl.lock:
            ctl.networks.remove(req.params["id"])
        return Response(204)

    def network_prune(_req: Request) -> Response:
        deleted = []
        with ctl.lock:
            for net in ctl.networks.all():
                if net.predefined or ctl.records.endpoints(network_id=net.id):
                    continue
                if any(
                    x.spec.network_mode == net.name
                    or any(e.network == net.name for e in x.spec.endpoints)
                    for x in ctl.records.containers()
                ):
                    continue
                ctl.networks.remove(net.id)
                deleted.append(net.name)
        return Response(200, {"NetworksDeleted": deleted})

    def network_connect(req: Request) -> Response:
        body = container_body(req, "connect")
        endpoint = parse_endpoint_config(body.get("EndpointConfig"))
        with ctl.lock:
            net = ctl.networks.find(req.params["id"])
            target = c.find(body["Container"])
            ctl.sandboxes.connect(target, net, endpoint)
            c.refresh_etc(target)  # /etc/hosts and the resolver's names
        return Response(200, {})

    def network_disconnect(req: Request) -> Response:
        body = container_body(req, "disconnect")
        force = bool(body.get("Force"))
        with ctl.lock:
            net = ctl.networks.find(req.params["id"])
            try:
                target = c.find(body["Container"])
            except NotFound:
                # -f: the container is gone but left an endpoint behind; clean that up.
                if force and ctl.sandboxes.forget_endpoints(net, body["Container"]):
                    return Response(200, {})
                raise
            ctl.sandboxes.disconnect(target, net, force)
            c.refresh_etc(target)
        return Response(200, {})

    r.add("POST", "/networks/{id}/connect", network_connect)
    r.add("POST", "/networks/{id}/disconnect", network_disconnect)
    r.add("GET", "/networks", network_list)
    r.add("GET", "/networks/{id}", network_get)
    r.add("POST", "/networks/create", network_create)
    r.add("DELETE", "/networks/{id}", network_remove)
    r.add("POST", "/networks/prune", network_prune)
    from boxnet.api.routes_lan import register as register_lan

    register_lan(r, ctl)
    return r


def parse_endpoint_config(cfg: Any) -> EndpointRequest:
    """Docker's EndpointConfig: {"IPAMConfig": {"IPv4Address"}, "Aliases": [...]}."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise InvalidArgument("invalid EndpointConfig: expected an object")
    ipam = cfg.get("IPAMConfig") or {}
    address = ipam.get("IPv4Address") if isinstance(ipam, dict) else None
    aliases = cfg.get("Aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidArgument("invalid Aliases: expected a list of strings")
    try:
        ipv4 = IPv4Address(address) if address else None
    except ValueError as exc:
        raise InvalidArgument(f"invalid IPv4Address {address!r}: {exc}") from exc
    return EndpointRequest(network="", ipv4=ipv4, aliases=tuple(aliases))


def container_body(req: Request, verb: str) -> dict[str, Any]:
    """The body of `network connect|disconnect`: an object naming the Container."""
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
        raise InvalidArgument(f"network {verb} needs a Container (name or id)")
    return body


def parse_network_request(body: Any) -> NetworkRequest:
    from boxnet.parsing.names import validate_network_name

    if not isinstance(body, dict):
        raise InvalidArgument("invalid network create request: expected a JSON object")
    name = body.get("Name")
    if not isinstance(name, str):
        raise InvalidArgument("network create needs a Name")
    validate_network_name(name)
    ipam = body.get("IPAM") or {}
    configs = ipam.get("Config") or [] if isinstance(ipam, dict) else []
    if not isinstance(configs, list) or len(configs) > 1:
        raise InvalidArgument("at most one IPv4 IPAM configuration is supported")
    subnet = gateway = ip_range = None
    aux: dict[str, str] = {}
    if configs:
        cfg = configs[0] or {}
        try:
            if cfg.get("Subnet"):
                subnet = IPv4Network(cfg["Subnet"], strict=True)
            if cfg.get("Gateway"):
                gateway = IPv4Address(cfg["Gateway"])
            if cfg.get("IPRange"):
                ip_range = IPv4Network(cfg["IPRange"], strict=True)
            for key, value in (cfg.get("AuxiliaryAddresses") or {}).items():
                aux[str(key)] = str(IPv4Address(value))
        except ValueError as exc:
            raise InvalidArgument(f"invalid IPAM configuration: {exc}") from exc
        if (gateway or ip_range or aux) and subnet is None:
            raise InvalidArgument("--gateway, --ip-range and --aux-address need --subnet")
    options = body.get("Options")
    labels = body.get("Labels")
    options = {} if options is None else options
    labels = {} if labels is None else labels
    if not isinstance(options, dict) or not isinstance(labels, dict):
        raise InvalidArgument("Options and Labels must be objects of strings")
    return NetworkRequest(
        name=name,
        driver=str(body.get("Driver") or "bridge"),
        subnet=subnet,
        gateway=gateway,
        ip_range=ip_range,
        aux_addresses=aux,
        internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")),
        ipv6=bool(body.get("EnableIPv6")),
        options={str(k): str(v) for k, v in options.items()},
        labels={str(k): str(v) for k, v in labels.items()},
    )
