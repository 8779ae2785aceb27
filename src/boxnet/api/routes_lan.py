"""boxnet's LAN extension routes (issue 6): host bridges and pipework. Shapes in docs/API.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.api.server import Request, Response, Router
from boxnet.errors import InvalidArgument
from boxnet.lan.pipework import parse_request

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def register(r: Router, ctl: Controller) -> None:
    def hostbridge_list(_req: Request) -> Response:
        return Response(200, ctl.lan.hostbridges.list())

    def hostbridge_create(req: Request) -> Response:
        body = req.json()
        name = body.get("Name") if isinstance(body, dict) else None
        uplink = body.get("Uplink") if isinstance(body, dict) else None
        if not isinstance(name, str) or not isinstance(uplink, str) or not name or not uplink:
            raise InvalidArgument("hostbridge create needs Name and Uplink")
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
            ctl.lan.pipework.detach(c, req.query.get("ifname") or "eth1")
        return Response(204)

    r.add("GET", "/boxnet/hostbridges", hostbridge_list)
    r.add("POST", "/boxnet/hostbridges", hostbridge_create)
    r.add("DELETE", "/boxnet/hostbridges/{name}", hostbridge_remove)
    r.add("POST", "/boxnet/pipework", pipework)
    r.add("DELETE", "/boxnet/pipework/{id}", pipework_remove)
