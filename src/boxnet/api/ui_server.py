"""`boxnetd --ui ADDR:PORT`: the topology page over TCP, read only.

Its router holds the page's GET routes and nothing else (no API: a browser tab on the LAN must
not be able to create a container), so any other path is 404 and any other method 405. Requests
must name the listener in their Host header (its address, or localhost for a loopback listener):
a web page elsewhere cannot read the topology through DNS rebinding.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from boxnet.api.connection import HttpConnection
from boxnet.api.server import Request, Response, Router, Server
from boxnet.errors import Conflict, Forbidden

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

log = logging.getLogger("boxnet.ui")


class UiServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    dispatch = Server.dispatch  # the same routing and error rendering; only the router differs

    def __init__(self, address: tuple[IPv4Address, int], router: Router) -> None:
        self.router = router
        try:
            super().__init__((str(address[0]), address[1]), HttpConnection)
        except OSError as exc:
            raise Conflict(
                f"--ui {address[0]}:{address[1]}: cannot listen there: {exc.strerror or exc}",
                hint="pick another port, or an address this host has",
            ) from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]  # an AF_INET (host, port)
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/boxnet/topology"


def allowed_hosts(address: tuple[IPv4Address, int]) -> set[str]:
    ip, port = address
    names = {f"{ip}:{port}"}
    if ip.is_loopback:
        names.add(f"localhost:{port}")
    if port == 80:
        names |= {n.removesuffix(":80") for n in names}
    return names


def _host_checked(fn: Callable[[Request], Response | None], hosts: set[str]) -> Any:
    def checked(req: Request) -> Response | None:
        host = req.headers.get("host", "").strip().lower()
        if host not in hosts:
            raise Forbidden(
                f"the topology page answers requests for {', '.join(sorted(hosts))}, not {host!r}",
                hint="open it by the address boxnetd --ui listens on",
            )
        return fn(req)

    return checked


def start(ctl: Controller, address: tuple[IPv4Address, int]) -> UiServer:
    from boxnet.api import routes_topology

    router = Router()
    routes_topology.page_routes(router, ctl)
    hosts = allowed_hosts(address)
    router.routes = [(m, rx, _host_checked(fn, hosts)) for m, rx, fn in router.routes]
    server = UiServer(address, router)
    threading.Thread(target=server.serve_forever, name="ui", daemon=True).start()
    log.info("topology page on %s", server.url)
    return server
