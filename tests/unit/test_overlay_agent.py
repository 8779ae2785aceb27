"""The overlay agent's own records against an in-memory store: published under the current lease
(again with each new one), withdrawn with the address claim, and what an outage kept it from
doing is done at the next relist. No kernel: only other hosts' records touch it."""

from __future__ import annotations

import time
from ipaddress import IPv4Address
from typing import Any, cast

from boxnet.cluster.endpoints import EndpointRecord
from boxnet.cluster.store import KeyValue
from boxnet.drivers.base import ClusterEnv, DriverEnv
from boxnet.drivers.overlay_agent import OverlayAgent
from boxnet.errors import Unavailable


class MemoryStore:
    def __init__(self) -> None:
        self.kv: dict[str, tuple[bytes, int]] = {}
        self.down = False

    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        if self.down:
            raise Unavailable("the cluster store does not answer")
        self.kv[key] = (value, lease)
        return 1

    def delete(self, key: str) -> bool:
        if self.down:
            raise Unavailable("the cluster store does not answer")
        return self.kv.pop(key, None) is not None

    def listing(self) -> list[KeyValue]:
        return [KeyValue(k, v, 1, 1, lease) for k, (v, lease) in self.kv.items()]


class Membership:
    def __init__(self, lease: int) -> None:
        self.lease = lease
        self.on_join: list[Any] = []


def agent(store: MemoryStore, lease: int = 7) -> OverlayAgent:
    cluster = ClusterEnv(cast(Any, store), IPv4Address("10.99.1.1"), cast(Any, Membership(lease)))
    return OverlayAgent(DriverEnv(ipr=cast(Any, None), cluster=cluster))


RECORD = EndpointRecord("net1", "ep1", 4096, "10.0.0.2", "02:42:0a:00:00:02", "10.99.1.1")
CLAIM = "/boxnet/ips/net1/10.0.0.2"


def settle(check: Any) -> None:
    """Writes happen in the agent's writer thread: wait for them, bounded."""
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "the writer thread did not get there"
        time.sleep(0.01)


def test_published_under_the_lease_and_again_under_a_new_one() -> None:
    store = MemoryStore()
    a = agent(store)
    a.publish(RECORD)
    settle(lambda: store.kv.get(RECORD.key) == (RECORD.to_json(), 7))
    a._on_join(9)  # the membership joined again (the old lease expired)
    assert store.kv[RECORD.key] == (RECORD.to_json(), 9)


def test_withdraw_releases_the_claim_and_an_outage_is_caught_up_at_relist() -> None:
    store = MemoryStore()
    store.kv[CLAIM] = (b"10.99.1.1/c1", 0)
    a = agent(store)
    a.publish(RECORD)
    settle(lambda: RECORD.key in store.kv)
    store.down = True
    a.withdraw(RECORD, release_ip=True)
    settle(lambda: a.pending == {RECORD.key, CLAIM})
    store.down = False
    a._on_list(store.listing())  # the watcher lists again once the store answers
    assert store.kv == {} and a.pending == set()


def test_a_put_lost_in_an_outage_is_made_at_relist() -> None:
    store = MemoryStore()
    store.down = True
    a = agent(store)
    a.publish(RECORD)
    settle(lambda: a._writes.empty())
    time.sleep(0.05)  # the failed put is logged, not retried by the writer
    store.down = False
    a._on_list(store.listing())
    assert store.kv[RECORD.key] == (RECORD.to_json(), 7)
