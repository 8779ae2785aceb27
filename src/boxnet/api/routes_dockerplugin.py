"""Docker's network plugin protocol (libnetwork's remote driver, issue 18 part 2), served on
its own unix socket (`boxnetd --docker-plugin-socket /run/docker/plugins/boxnet.sock`), which
dockerd finds by its name: driver `boxnet`.

Every call is a POST with a JSON body; answers are JSON with Docker's plugin media type, and
refusals are `{"Err": "..."}` (status 200, as libnetwork's remote driver reads them: it prefixes
"remote: " and shows the text to the user), `{"Error": "..."}` for the IPAM methods (the key
libnetwork's remote IPAM reads: given "Err" it took the refusal for an empty pool and said
"invalid CIDR address"). The work is core/dockerplugin.py's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_interface,
    ip_network,
)
from typing import TYPE_CHECKING, Any

from boxnet.api.server import Request, Response, Router
from boxnet.core import metrics
from boxnet.core.dockeripam import ADDRESS_SPACE
from boxnet.core.dockerplugin import DockerNetworkRequest
from boxnet.errors import BoxnetError, InvalidArgument
from boxnet.model import PortRequest
from boxnet.parsing.body import Field

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

log = logging.getLogger("boxnet.dockerplugin")

MEDIA_TYPE = "application/vnd.docker.plugins.v1.2+json"
OPT_GENERIC = "com.docker.network.generic"
OPT_PORTMAP = "com.docker.network.portmap"
OPT_INTERNAL = "com.docker.network.internal"
OPT_GATEWAY = "com.docker.network.gateway"  # IPAM Data key, and RequestAddressType's value
PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp"}  # Docker's portmap carries IP protocol numbers


def answer(body: dict[str, Any]) -> Response:
    return Response(200, json.dumps(body).encode(), content_type=MEDIA_TYPE)


def _err_key(path: str) -> str:
    return "Error" if path.startswith("/IpamDriver.") else "Err"


def plugin_call(fn: Callable[[Field], dict[str, Any]]) -> Callable[[Request], Response]:
    """A protocol method: the body in, its answer or {"Err"} out, never a traceback."""

    def call(req: Request) -> Response:
        try:
            return answer(fn(Field(req.json())))
        except (BoxnetError, ValueError) as exc:  # ValueError: an address that is none
            text = str(exc)
            if isinstance(exc, BoxnetError):
                text = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
            log.info("docker plugin %s refused: %s", req.path, text)
            return answer({_err_key(req.path): text})
        except Exception as exc:
            log.exception("docker plugin %s failed", req.path)
            body = {_err_key(req.path): f"boxnet: {exc}"}
            return Response(500, json.dumps(body).encode(), MEDIA_TYPE)

    return call


def _ipam_v4(body: Field) -> tuple[IPv4Network, IPv4Address | None, dict[str, str]]:
    data = body["IPv4Data"].items()
    if not data:
        raise InvalidArgument(
            "Docker gave no IPv4 pool for this network",
            hint="use Docker's default IPAM (leave out --ipam-driver)",
        )
    first = data[0]
    pool = ip_network(first["Pool"].text(required=True), strict=False)
    if not isinstance(pool, IPv4Network):
        raise first["Pool"].error("an IPv4 CIDR")
    gateway_text = first["Gateway"].text()
    gateway = ip_interface(gateway_text).ip if gateway_text else None
    if gateway is not None and not isinstance(gateway, IPv4Address):
        raise first["Gateway"].error("an IPv4 address")
    aux = {k: str(ip_interface(v).ip) for k, v in first["AuxAddresses"].string_map().items()}
    return pool, gateway, aux


def _ipam_v6(body: Field) -> tuple[IPv6Network | None, IPv6Address | None]:
    """IPv6Data[0] (`--ipv6`: Docker's IPAM needs an IPv6 --subnet), or none."""
    data = body["IPv6Data"].items()
    if not data:
        return None, None
    first = data[0]
    pool = ip_network(first["Pool"].text(required=True), strict=False)
    if not isinstance(pool, IPv6Network):
        raise first["Pool"].error("an IPv6 CIDR")
    gateway_text = first["Gateway"].text()
    gateway = ip_interface(gateway_text).ip if gateway_text else None
    if gateway is not None and not isinstance(gateway, IPv6Address):
        raise first["Gateway"].error("an IPv6 address")
    return pool, gateway


def _v4_network(text: str, where: Field) -> IPv4Network:
    pool = ip_network(text, strict=False)
    if not isinstance(pool, IPv4Network):
        raise where.error("an IPv4 CIDR")
    return pool


def _ports(options: Field) -> list[PortRequest]:
    out = []
    for item in options[OPT_PORTMAP].items():
        proto = PROTOCOLS.get(item["Proto"].integer(0, 255, 6))
        if proto is None:
            raise item["Proto"].error("6 (tcp), 17 (udp) or 132 (sctp)")
        host_ip_text = item["HostIP"].text()
        host_ip = IPv4Address(host_ip_text) if host_ip_text else None
        start = item["HostPort"].integer(0, 65535, 0) or None
        end = item["HostPortEnd"].integer(0, 65535, 0) or start
        out.append(PortRequest(item["Port"].integer(1, 65535, 0), proto, host_ip, start, end))
    return out


def register(r: Router, ctl: Controller) -> None:
    plugin = ctl.docker_plugin

    def activate(_body: Field) -> dict[str, Any]:
        return {"Implements": ["NetworkDriver", "IpamDriver"]}

    def capabilities(_body: Field) -> dict[str, Any]:
        return {"Scope": "local", "ConnectivityScope": "local"}

    def create_network(body: Field) -> dict[str, Any]:
        options = body["Options"]
        pool, gateway, aux = _ipam_v4(body)
        pool6, gateway6 = _ipam_v6(body)
        internal = options[OPT_INTERNAL].value is True
        request = DockerNetworkRequest(
            docker_id=body["NetworkID"].text(required=True),
            pool=pool,
            gateway=gateway,
            aux=aux,
            options=options[OPT_GENERIC].string_map(),
            internal=internal,
            pool6=pool6,
            gateway6=gateway6,
        )
        with ctl.lock:
            net = plugin.create_network(request)
        log.info("docker network %s -> boxnet network %s", request.docker_id[:12], net.name)
        return {}

    def delete_network(body: Field) -> dict[str, Any]:
        with ctl.lock:
            plugin.delete_network(body["NetworkID"].text(required=True))
        return {}

    def create_endpoint(body: Field) -> dict[str, Any]:
        iface = body["Interface"]
        text = iface["Address"].text()
        address = ip_interface(text) if text else None
        if address is not None and not isinstance(address, IPv4Interface):
            raise iface["Address"].error("an IPv4 address")
        text6 = iface["AddressIPv6"].text()
        address6 = ip_interface(text6) if text6 else None
        if address6 is not None and not isinstance(address6, IPv6Interface):
            raise iface["AddressIPv6"].error("an IPv6 address")
        mac = iface["MacAddress"].text()
        with ctl.lock, metrics.timed("docker.create_endpoint"):  # GET /boxnet/metrics
            result = plugin.create_endpoint(
                body["NetworkID"].text(required=True),
                body["EndpointID"].text(required=True),
                address,
                mac,
                address6,
            )
        e = result.endpoint
        given: dict[str, str] = {}  # only what Docker left open: it refuses changed values
        if address is None:
            given["Address"] = str(e.addresses[0])
        v6 = next((a for a in e.addresses if a.version == 6), None)
        if address6 is None and v6 is not None:
            given["AddressIPv6"] = str(v6)
        if not mac:
            given["MacAddress"] = e.mac
        return {"Interface": given} if given else {}

    def delete_endpoint(body: Field) -> dict[str, Any]:
        with ctl.lock, metrics.timed("docker.delete_endpoint"):
            plugin.delete_endpoint(
                body["NetworkID"].text(required=True), body["EndpointID"].text(required=True)
            )
        return {}

    def oper_info(body: Field) -> dict[str, Any]:
        with ctl.lock:
            result = plugin.endpoint(
                body["NetworkID"].text(required=True), body["EndpointID"].text(required=True)
            )
        value = {
            "boxnet.network": result.network.name,
            "boxnet.host_veth": result.endpoint.host_veth,
            "boxnet.ports": [
                f"{b.host_ip}:{b.host_port}->{b.container_port}/{b.proto}" for b in result.bindings
            ],
        }
        return {"Value": value}

    def join(body: Field) -> dict[str, Any]:
        with ctl.lock:
            result = plugin.endpoint(
                body["NetworkID"].text(required=True), body["EndpointID"].text(required=True)
            )
        e = result.endpoint
        out: dict[str, Any] = {"InterfaceName": {"SrcName": e.ifname, "DstPrefix": "eth"}}
        gateway = next((g for g in e.gateways if g.version == 4), None)
        if gateway is not None:
            out["Gateway"] = str(gateway)
        gateway6 = next((g for g in e.gateways if g.version == 6), None)
        if gateway6 is not None:
            out["GatewayIPv6"] = str(gateway6)
        return out

    def leave(body: Field) -> dict[str, Any]:
        # dockerd moves the interface back here before DeleteEndpoint removes it.
        return {}

    def program(body: Field) -> dict[str, Any]:
        ports = _ports(body["Options"])
        with ctl.lock, metrics.timed("docker.program_ports"):
            plugin.program_ports(
                body["NetworkID"].text(required=True),
                body["EndpointID"].text(required=True),
                ports,
            )
        return {}

    def revoke(body: Field) -> dict[str, Any]:
        with ctl.lock:
            plugin.revoke_ports(
                body["NetworkID"].text(required=True), body["EndpointID"].text(required=True)
            )
        return {}

    def nothing(_body: Field) -> dict[str, Any]:
        return {}  # discovery: nothing to learn about other nodes for a local-scope driver

    ipam = plugin.ipam

    def ipam_capabilities(_body: Field) -> dict[str, Any]:
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    def address_spaces(_body: Field) -> dict[str, Any]:
        return {
            "LocalDefaultAddressSpace": ADDRESS_SPACE,
            "GlobalDefaultAddressSpace": ADDRESS_SPACE,
        }

    def request_pool(body: Field) -> dict[str, Any]:
        text = body["Pool"].text()
        pool = _v4_network(text, body["Pool"]) if text else None
        with ctl.lock:
            gateway = ipam.request_pool(pool, body["SubPool"].text(), body["V6"].flag())
        pool_text = str(gateway.network)
        return {"PoolID": pool_text, "Pool": pool_text, "Data": {OPT_GATEWAY: str(gateway)}}

    def release_pool(body: Field) -> dict[str, Any]:
        with ctl.lock:
            ipam.release_pool(body["PoolID"].text(required=True))
        return {}

    def request_address(body: Field) -> dict[str, Any]:
        pool_id = body["PoolID"].text(required=True)
        _v4_network(pool_id, body["PoolID"])
        text = body["Address"].text()
        wanted = IPv4Address(text) if text else None
        gateway = body["Options"]["RequestAddressType"].text() == OPT_GATEWAY
        with ctl.lock:
            address = ipam.request_address(pool_id, wanted, gateway)
        return {"Address": str(address), "Data": {}}

    def release_address(body: Field) -> dict[str, Any]:
        pool_id = body["PoolID"].text(required=True)
        _v4_network(pool_id, body["PoolID"])
        with ctl.lock:
            ipam.release_address(pool_id, IPv4Address(body["Address"].text(required=True)))
        return {}

    methods: dict[str, Callable[[Field], dict[str, Any]]] = {
        "/IpamDriver.GetCapabilities": ipam_capabilities,
        "/IpamDriver.GetDefaultAddressSpaces": address_spaces,
        "/IpamDriver.RequestPool": request_pool,
        "/IpamDriver.ReleasePool": release_pool,
        "/IpamDriver.RequestAddress": request_address,
        "/IpamDriver.ReleaseAddress": release_address,
        "/Plugin.Activate": activate,
        "/NetworkDriver.GetCapabilities": capabilities,
        "/NetworkDriver.CreateNetwork": create_network,
        "/NetworkDriver.DeleteNetwork": delete_network,
        "/NetworkDriver.CreateEndpoint": create_endpoint,
        "/NetworkDriver.EndpointOperInfo": oper_info,
        "/NetworkDriver.DeleteEndpoint": delete_endpoint,
        "/NetworkDriver.Join": join,
        "/NetworkDriver.Leave": leave,
        "/NetworkDriver.DiscoverNew": nothing,
        "/NetworkDriver.DiscoverDelete": nothing,
        "/NetworkDriver.ProgramExternalConnectivity": program,
        "/NetworkDriver.RevokeExternalConnectivity": revoke,
    }
    for path, fn in methods.items():
        r.add("POST", path, plugin_call(fn))


def build_plugin_router(ctl: Controller) -> Router:
    """The plugin socket routes the protocol alone: no Engine API on it."""
    router = Router()
    register(router, ctl)
    return router
