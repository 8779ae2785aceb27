"""The `host` driver: the predefined `host` network; its containers use the daemon's own
namespace (network mode `host`), so there is nothing to create, join or collect."""

from __future__ import annotations

from boxnet.drivers.base import NetworkDriver, Plan, PlanContext
from boxnet.errors import Forbidden
from boxnet.model import Network, NetworkRequest


class HostDriver(NetworkDriver):
    name = "host"
    joinable = False

    def validate(self, req: NetworkRequest, base: Network, ctx: PlanContext) -> Plan:
        raise Forbidden(
            "only one instance of the host network may exist (the predefined `host`)",
            hint="run containers with --network host",
        )
