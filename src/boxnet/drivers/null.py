"""The `null` driver: the predefined `none` network; its containers get a namespace with only
`lo` (network mode `none`), so there is nothing to create, join or collect."""

from __future__ import annotations

from boxnet.drivers.base import NetworkDriver, Plan, PlanContext
from boxnet.errors import Forbidden
from boxnet.model import Network, NetworkRequest


class NullDriver(NetworkDriver):
    name = "null"
    joinable = False

    def validate(self, req: NetworkRequest, base: Network, ctx: PlanContext) -> Plan:
        raise Forbidden(
            "only one instance of the null network may exist (the predefined `none`)",
            hint="run containers with --network none",
        )
