"""Docker Engine API routes (and boxnet's extensions), mapped onto the controller.

Each resource registers its own routes: system, images, containers and execs, networks,
and the LAN extension. Request bodies are read through boxnet.parsing.body (one accessor layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.api import (
    attach,
    routes_cni,
    routes_containers,
    routes_events,
    routes_files,
    routes_images,
    routes_lan,
    routes_manage,
    routes_networks,
    routes_observe,
    routes_system,
    routes_topology,
)
from boxnet.api.server import Router

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def build_router(ctl: Controller) -> Router:
    r = Router()
    # attach first: its ping, start, wait and exec start (hijacked) answer before any other.
    for module in (
        attach,
        routes_system,
        routes_images,
        routes_containers,
        routes_networks,
        routes_lan,
        routes_cni,
        routes_events,
        routes_observe,
        routes_manage,
        routes_files,
        routes_topology,
    ):
        module.register(r, ctl)
    return r
