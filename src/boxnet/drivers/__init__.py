"""Network drivers (drivers/base.py has the interface) and their registry.

Adding a driver: one module here with a NetworkDriver subclass and its line in DRIVERS, its
kernel verbs in kernel/ and its tests. Core finds it by the name a network records
(`Network.driver`) and never asks which driver it is talking to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from boxnet.drivers.base import (
    ClusterEnv,
    DriverEnv,
    DriverHost,
    NetworkDriver,
    Plan,
    PlanContext,
    Rollback,
)
from boxnet.drivers.bridge import BridgeDriver
from boxnet.drivers.host import HostDriver
from boxnet.drivers.macvlan import MacvlanDriver
from boxnet.drivers.null import NullDriver
from boxnet.drivers.overlay import OverlayDriver
from boxnet.errors import InvalidArgument

__all__ = [
    "DRIVERS",
    "BridgeDriver",
    "ClusterEnv",
    "DriverEnv",
    "DriverHost",
    "Drivers",
    "NetworkDriver",
    "Plan",
    "PlanContext",
    "Rollback",
]

DRIVERS: tuple[type[NetworkDriver], ...] = (
    BridgeDriver,
    MacvlanDriver,
    OverlayDriver,
    HostDriver,
    NullDriver,
)
# What `network create -d` accepts (host and null exist once, predefined).
CREATABLE = tuple(d.name for d in DRIVERS if d.joinable)


class Drivers:
    """One instance of every driver, by name (built once by the controller)."""

    def __init__(self, env: DriverEnv) -> None:
        self._by_name = {cls.name: cls(env) for cls in DRIVERS}

    @property
    def bridge(self) -> BridgeDriver:
        """The driver of the predefined default network (`bridge`, Docker's docker0)."""
        return cast(BridgeDriver, self._by_name[BridgeDriver.name])

    def __getitem__(self, name: str) -> NetworkDriver:
        driver = self._by_name.get(name)
        if driver is None:
            raise InvalidArgument(
                f"network driver {name!r} is not supported",
                hint="use one of: " + ", ".join(CREATABLE),
            )
        return driver

    def __iter__(self) -> Iterator[NetworkDriver]:
        return iter(self._by_name.values())

    def scope(self, name: str) -> str:
        """The API's Scope of a network of driver name: "local" or "global"."""
        driver = self._by_name.get(name)
        return driver.scope if driver is not None else "local"

    def start(self, host: DriverHost) -> None:
        for driver in self:
            driver.start(host)

    def stop(self) -> None:
        for driver in self:
            driver.stop()


def all_steps() -> tuple[str, ...]:
    """Every fault point the drivers pass (faults.py has core's), for the crash tests."""
    return tuple(step for d in DRIVERS for step in d.steps)
