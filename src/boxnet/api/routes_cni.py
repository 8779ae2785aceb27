"""The CNI plugin's routes (issue 18): /boxnet/cni/{attach,detach,check,gc,invoke}. Shapes in
docs/API.md.

The plugin executables (boxnet-cni.c, cni/plugin.py) send one `invoke` per verb with the spec's
environment and stdin as they are; cni/verbs.py turns them into the other routes' bodies, here,
and their answers into the spec's results. The work is core/external.py's, shared with any other
plugin that joins a namespace boxnet does not own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any

from boxnet.api.server import Request, Response, Router
from boxnet.cni import codec, verbs
from boxnet.core import metrics
from boxnet.core.external import ExternalRequest, ExternalResult, owner_id
from boxnet.errors import BoxnetError, InvalidArgument, NotFound
from boxnet.kernel import links
from boxnet.model import PortRequest
from boxnet.parsing.body import Field
from boxnet.parsing.names import validate_ifname

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

log = logging.getLogger("boxnet.cni")

KIND = "cni"
PROTOCOLS = ("tcp", "udp", "sctp")


def _subnet(text: str) -> IPv4Network | None:
    if not text:
        return None
    try:
        net = ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from None
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(
            f"subnet {text} is IPv6: a network created for CNI is IPv4",
            hint="create a dual-stack network with boxnet network create --ipv6, then name it",
        )
    return net


def _ipv4(text: str, what: str) -> IPv4Address | None:
    if not text:
        return None
    try:
        ip = ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}") from None
    if not isinstance(ip, IPv4Address):
        raise InvalidArgument(f"{what} {text} is IPv6: only IPv4 is supported here")
    return ip


def _ports(field: Field) -> tuple[PortRequest, ...]:
    out = []
    for item in field.items():
        container_port = item["containerPort"].integer(1, 65535, 0)
        if container_port == 0:
            raise item.error("a portMappings entry with a containerPort")
        host_port = item["hostPort"].integer(0, 65535, 0)  # 0: any free port
        proto = item["protocol"].text("tcp").lower()
        if proto not in PROTOCOLS:
            raise item["protocol"].error("tcp, udp or sctp")
        host_ip = _ipv4(item["hostIP"].text(), "portMappings hostIP")
        start = host_port or None
        out.append(PortRequest(container_port, proto, host_ip, start, start))
    return tuple(out)


def _common(body: Field) -> tuple[str, str, str]:
    container_id = body["ContainerID"].text(required=True)
    ifname = validate_ifname(body["IfName"].text(required=True))
    network = body["Network"].text(required=True)
    return container_id, ifname, network


def result_json(ctl: Controller, result: ExternalResult) -> dict[str, Any]:
    e = result.endpoint
    host_mac = links.mac_of(e.host_veth) if e.host_veth else None
    return {
        "Network": result.network.name,
        "NetworkID": result.network.id,
        "Interface": {"Name": e.ifname, "Mac": e.mac, "Sandbox": result.record.netns},
        "HostInterface": {"Name": e.host_veth, "Mac": host_mac} if host_mac is not None else None,
        "IPs": [
            {
                "Address": str(a),
                "Gateway": next((str(g) for g in e.gateways if g.version == a.version), ""),
            }
            for a in e.addresses
        ],
        "Routes": [
            {"Dst": "0.0.0.0/0" if g.version == 4 else "::/0", "Gw": str(g)} for g in e.gateways
        ],
        "DNS": {"Nameservers": list(result.nameservers), "Search": list(result.search)},
        "Ports": [
            {
                "HostIP": str(b.host_ip),
                "HostPort": b.host_port,
                "ContainerPort": b.container_port,
                "Protocol": b.proto,
            }
            for b in result.bindings
        ],
    }


def _event(ctl: Controller, action: str, network_id: str, owner: str) -> None:
    """`network connect|disconnect` events, as for a container (GET /events)."""
    net = ctl.networks.by_id(network_id)
    name, driver = (net.name, net.driver) if net else ("", "")
    ctl.events.publish(
        "network", action, network_id, {"container": owner, "name": name, "type": driver}
    )


def register(r: Router, ctl: Controller) -> None:
    def attach(data: Any) -> dict[str, Any]:
        body = Field(data)
        container_id, ifname, network = _common(body)
        request = ExternalRequest(
            kind=KIND,
            container_id=container_id,
            ifname=ifname,
            netns=body["Netns"].text(required=True),
            network=network,
            subnet=_subnet(body["Subnet"].text()),
            gateway=_ipv4(body["Gateway"].text(), "gateway"),
            name=body["Name"].text(),
            aliases=body["Aliases"].strings(),
            ports=_ports(body["PortMappings"]),
            ipv4=_ipv4(body["IP"].text(), "IP"),
            dns=not body["NoDNS"].flag(),
        )
        with ctl.lock, metrics.timed("cni.attach"):  # GET /boxnet/metrics, for bench/cni.py
            result = ctl.external.attach(request)
            _event(ctl, "connect", result.network.id, result.record.owner)
            return result_json(ctl, result)

    def detach(data: Any) -> dict[str, Any]:
        container_id, ifname, network = _common(Field(data))
        with ctl.lock, metrics.timed("cni.detach"):
            record = ctl.external.table.get(owner_id(KIND, network, container_id, ifname))
            found = ctl.external.detach(KIND, network, container_id, ifname)
            if record is not None:
                _event(ctl, "disconnect", record.network_id, record.owner)
        return {"Found": found}

    def check(data: Any) -> dict[str, Any]:
        container_id, ifname, network = _common(Field(data))
        with ctl.lock:
            record = ctl.external.find(KIND, network, container_id, ifname)
            problems = ctl.external.check(record)
            answer = result_json(ctl, ctl.external.result(record)) if not problems else {}
        return {"Problems": problems, "Result": answer}

    def gc(data: Any) -> dict[str, Any]:
        body = Field(data)
        name = body["Network"].text(required=True)
        keep = {
            (item["ContainerID"].text(required=True), item["IfName"].text(required=True))
            for item in body["Valid"].items()
        }
        with ctl.lock:
            try:
                net = ctl.networks.find(name)
            except NotFound:
                return {"Removed": []}  # nothing of it can be attached
            removed = ctl.external.collect(KIND, net, keep)
        return {"Removed": removed}

    work: dict[str, Callable[[Any], dict[str, Any]]] = {
        "/boxnet/cni/attach": attach,
        "/boxnet/cni/detach": detach,
        "/boxnet/cni/check": check,
        "/boxnet/cni/gc": gc,
    }
    for path, fn in work.items():
        r.add("POST", path, _route(fn))
    r.add("POST", verbs.INVOKE, lambda req: _invoke(req, work))


def _route(fn: Callable[[Any], dict[str, Any]]) -> Callable[[Request], Response]:
    return lambda req: Response(200, fn(req.json()))


def _invoke(req: Request, work: dict[str, Callable[[Any], dict[str, Any]]]) -> Response:
    """One plugin invocation, done here (verbs.invoke; both plugin executables send it): the
    verbs call the routes' work in-process, a boxnet error becomes the error object the same
    request over HTTP would have given the plugin (codec.error_from_daemon)."""
    try:
        environ, stdin = verbs.unframe(req.body)
    except ValueError as exc:
        raise InvalidArgument(f"not a CNI invocation: {exc}") from None

    def call(method: str, url: str, body: dict[str, Any] | None) -> Any:
        try:
            return work[url](body) if url in work else None  # GET /_ping: we are here
        except BoxnetError as exc:
            raise codec.error_from_daemon(exc.status, json.dumps(exc.to_json()).encode()) from None
        except Exception as exc:
            log.exception("internal error in CNI %s", url)
            raise codec.error_from_daemon(
                500, json.dumps({"message": f"internal error: {exc}"}).encode()
            ) from None

    # The whole verb in the daemon (bench/cni.py), by verb.
    with metrics.timed(f"cni.invoke {environ.get('CNI_COMMAND', '')[:8]}"):
        code, out = verbs.invoke(environ, stdin, call)
    # The output as it is printed (with ";charset", Response sends bytes as they are).
    kind = "application/json; charset=utf-8"
    return Response(200, out.encode(), content_type=kind, headers={verbs.EXIT_HEADER: str(code)})
