"""The topology page and `explain` (issue 19). `page_routes` are the read-only GET routes the
`--ui` TCP listener serves too; `register` adds them and explain to the API on the unix socket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.api.server import Request, Response, Router
from boxnet.errors import InvalidArgument

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

LONG_POLL = 25.0  # seconds a page's `?wait=VERSION` is held at most
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# The page runs its own inline script and style and talks to its own origin, nothing else.
PAGE_HEADERS = NO_STORE | {
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline';"
    " style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
}


def page_routes(r: Router, ctl: Controller) -> None:
    # The topology modules are imported by the first request that needs them, not at
    # start-up: ~50 ms of every boxnetd start otherwise (benchmarked in bench/startup.py).
    def html(_req: Request) -> Response:
        from boxnet.topology import page

        return Response(200, page.html(), "text/html; charset=utf-8", headers=PAGE_HEADERS)

    def as_json(req: Request) -> Response:
        from boxnet.topology import render, service

        seen = req.query.get("wait", "")
        doc = (
            service.wait_for_change(ctl, seen, LONG_POLL)
            if seen
            else render.to_json(service.topology(ctl))
        )
        return Response(200, doc, headers=NO_STORE)

    def as_svg(_req: Request) -> Response:
        from boxnet.topology import service, svg

        return Response(200, svg.to_svg(service.topology(ctl)), "image/svg+xml", headers=NO_STORE)

    def as_dot(_req: Request) -> Response:
        from boxnet.topology import render, service

        return Response(200, render.to_dot(service.topology(ctl)), "text/vnd.graphviz")

    r.add("GET", "/boxnet/topology", html)
    r.add("GET", "/boxnet/topology.json", as_json)
    r.add("GET", "/boxnet/topology.svg", as_svg)
    r.add("GET", "/boxnet/topology.dot", as_dot)


def register(r: Router, ctl: Controller) -> None:
    page_routes(r, ctl)

    def explain(req: Request) -> Response:
        from boxnet.topology import service

        src, dst = req.query.get("src", ""), req.query.get("dst", "")
        if not src or not dst:
            raise InvalidArgument("explain needs src and dst", hint="boxnet explain SRC DST[:PORT]")
        family = {"": None, "4": 4, "6": 6}.get(req.query.get("family", ""), 0)
        if family == 0:
            raise InvalidArgument("family is 4 or 6", hint="e.g. /boxnet/explain?family=6&...")
        result = service.explain(ctl, src, dst, family).to_json()
        if req.flag("probe"):
            from boxnet.topology import probe

            result["Probe"] = probe.run(ctl, src, dst, family)
        return Response(200, result)

    r.add("GET", "/boxnet/explain", explain)
    r.add("GET", "/boxnet/ui", lambda _req: Response(200, {"Address": ctl.ui_url}))
