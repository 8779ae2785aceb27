"""Network routes (Docker Engine API): list, inspect, create, remove, prune, connect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boxnet.api.server import Request, Response, Router
from boxnet.api.views import network_inspect
from boxnet.core.network_request import parse_connect, parse_network_request
from boxnet.errors import NotFound

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def register(r: Router, ctl: Controller) -> None:
    c = ctl.containers

    def network_list(req: Request) -> Response:
        from boxnet.core.listfilters import select_networks

        chosen = select_networks(ctl, req.query.get("filters"))
        return Response(200, [network_inspect(ctl, n) for n in chosen])

    def network_get(req: Request) -> Response:
        return Response(200, network_inspect(ctl, ctl.networks.find(req.params["id"])))

    def network_create(req: Request) -> Response:
        with ctl.lock:
            created = ctl.networks.create(parse_network_request(req.json()))
            net = created.network
            ctl.events.publish("network", "create", net.id, {"name": net.name, "type": net.driver})
        # The warnings are this create's own (returned with it, never left in shared state).
        return Response(201, {"Id": created.network.id, "Warning": "; ".join(created.warnings)})

    def network_remove(req: Request) -> Response:
        with ctl.lock:
            net = ctl.networks.find(req.params["id"])
            ctl.networks.remove(net.id)
            ctl.events.publish("network", "destroy", net.id, {"name": net.name, "type": net.driver})
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
                ctl.events.publish(
                    "network", "destroy", net.id, {"name": net.name, "type": net.driver}
                )
                deleted.append(net.name)
        return Response(200, {"NetworksDeleted": deleted})

    def network_connect(req: Request) -> Response:
        from dataclasses import replace

        from boxnet.parsing.body import Field
        from boxnet.parsing.runflags import parse_link

        raw = req.json()
        body = parse_connect(raw, "connect")
        links = [parse_link(x) for x in Field(raw)["EndpointConfig"]["Links"].strings()]
        with ctl.lock:
            net = ctl.networks.find(req.params["id"])
            target = c.find(body.container)
            for name, _alias in links if net.name == "bridge" else ():  # before any change
                try:  # on a user network a link is a name its target may take later
                    c.find(name)
                except NotFound:
                    raise NotFound(f"could not get container for {name}") from None
            ctl.sandboxes.connect(target, net, body.endpoint)
            endpoint_raw = raw.get("EndpointConfig") if isinstance(raw, dict) else None
            if links or endpoint_raw:  # links: names that answer in this container
                current = ctl.records.container(target.id) or target
                spec = replace(
                    current.spec,
                    links=(*current.spec.links, *links),
                    raw=_with_endpoint_raw(current.spec.raw, net.name, endpoint_raw),
                )
                ctl.records.update_container(current, spec=spec)
            c.network_event("connect", net.id, target)
            c.refresh_etc(target)  # /etc/hosts and the resolver's names
        return Response(200, {})

    def network_disconnect(req: Request) -> Response:
        body = parse_connect(req.json(), "disconnect")
        with ctl.lock:
            net = ctl.networks.find(req.params["id"])
            try:
                target = c.find(body.container)
            except NotFound:
                # -f: the container is gone but left an endpoint behind; clean that up.
                if body.force and ctl.sandboxes.forget_endpoints(net, body.container):
                    return Response(200, {})
                raise
            ctl.sandboxes.disconnect(target, net, body.force)
            c.network_event("disconnect", net.id, target)
            c.refresh_etc(target)
        return Response(200, {})

    r.add("POST", "/networks/{id}/connect", network_connect)
    r.add("POST", "/networks/{id}/disconnect", network_disconnect)
    r.add("GET", "/networks", network_list)
    r.add("GET", "/networks/{id}", network_get)
    r.add("POST", "/networks/create", network_create)
    r.add("DELETE", "/networks/{id}", network_remove)
    r.add("POST", "/networks/prune", network_prune)


def _with_endpoint_raw(raw: dict[str, Any], network: str, config: Any) -> dict[str, Any]:
    """The create body with a connect's EndpointConfig kept under NetworkingConfig (inspect
    echoes its Links, DriverOpts from there, as for the networks given at create)."""
    if not isinstance(config, dict):
        return raw
    networking = dict(raw.get("NetworkingConfig") or {})
    configs = dict(networking.get("EndpointsConfig") or {})
    configs[network] = config
    networking["EndpointsConfig"] = configs
    return {**raw, "NetworkingConfig": networking}
