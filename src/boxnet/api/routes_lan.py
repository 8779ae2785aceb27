"""boxnet's LAN extension routes (issue 6): host bridges and pipework. Shapes in docs/API.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.api.server import Request, Response, Router
from boxnet.errors import InvalidArgument
from boxnet.lan.pipework import parse_request
from boxnet.parsing.body import Field
from boxnet.parsing.names import validate_ifname

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def register(r: Router, ctl: Controller) -> None:
    def hostbridge_list(_req: Request) -> Response:
        return Response(200, ctl.lan.hostbridges.list())

    def hostbridge_create(req: Request) -> Response:
        body = Field(req.json())
        name, uplink = body["Name"].text(), body["Uplink"].text()
        if not name or not uplink:
            raise InvalidArgument("hostbridge create needs Name and Uplink")
        validate_ifname(name)
        validate_ifname(uplink)
        with ctl.lock:
            ctl.lan.hostbridges.create(name, uplink)
        return Response(201, {"Name": name})

    def hostbridge_remove(req: Request) -> Response:
        with ctl.lock:
            ctl.lan.hostbridges.remove(req.params["name"])
        return Response(204)

    def pipework(req: Request) -> Response:
        body = parse_request(req.json())
        with ctl.lock:
            c = ctl.containers.find(body["Container"])
            att = ctl.lan.pipework.attach(c, body)
        return Response(200, att.to_json())

    def pipework_remove(req: Request) -> Response:
        with ctl.lock:
            c = ctl.containers.find(req.params["id"])
            ctl.lan.pipework.detach(c, validate_ifname(req.query.get("ifname") or "eth1"))
        return Response(204)

    r.add("GET", "/boxnet/hostbridges", hostbridge_list)
    r.add("POST", "/boxnet/hostbridges", hostbridge_create)
    r.add("DELETE", "/boxnet/hostbridges/{name}", hostbridge_remove)
    r.add("POST", "/boxnet/pipework", pipework)
    r.add("DELETE", "/boxnet/pipework/{id}", pipework_remove)
