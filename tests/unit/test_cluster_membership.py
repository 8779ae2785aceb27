"""HostMembership's loop against a scripted store: join, lease loss, outage and recovery."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from boxnet.cluster.membership import HostMembership
from boxnet.cluster.store import KeyValue, WatchEvent
from boxnet.errors import Unavailable


class ScriptedStore:
    """Leases and puts recorded; keep_alive answers from a script (an int TTL or an exception)."""

    def __init__(self, keep_alive_script: list[object]) -> None:
        self.script = keep_alive_script
        self.puts: list[tuple[str, int]] = []
        self.granted = 0
        self.revoked: list[int] = []
        self.done = threading.Event()  # the script ran out

    def grant_lease(self, ttl: int) -> int:
        self.granted += 1
        return 100 + self.granted

    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        self.puts.append((key, lease))
        return 1

    def keep_alive(self, lease: int) -> int:
        if not self.script:
            self.done.set()
            return 10
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, int)
        return step

    def revoke_lease(self, lease: int) -> None:
        self.revoked.append(lease)

    # Unused by membership.
    def get(self, key: str) -> KeyValue | None:
        raise NotImplementedError

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        raise NotImplementedError

    def create(self, key: str, value: bytes, lease: int = 0) -> bool:
        raise NotImplementedError

    def compare_and_put(self, key: str, mod_revision: int, value: bytes) -> bool:
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        raise NotImplementedError

    def watch(self, prefix: str, start_revision: int) -> Iterator[WatchEvent]:
        raise NotImplementedError


def run(store: ScriptedStore) -> HostMembership:
    # ttl 0: no wait between keep-alives, so the script runs at once.
    member = HostMembership(store, IPv4Address("192.168.198.142"), ttl=0)
    member.start()
    assert store.done.wait(10)
    member.stop()
    return member


def test_an_expired_lease_is_replaced_and_the_key_written_again() -> None:
    store = ScriptedStore([10, 0, 10])
    member = run(store)
    key = "/boxnet/hosts/192.168.198.142"
    assert store.puts == [(key, 101), (key, 102)]
    assert store.revoked == [102] and member.lease == 102


def test_an_outage_is_logged_once_and_the_recovery_too(caplog: pytest.LogCaptureFixture) -> None:
    down = Unavailable("the cluster store does not answer (x)")
    store = ScriptedStore([down, down, down, 10])
    with caplog.at_level(logging.INFO, logger="boxnetd.cluster"):
        member = run(store)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "cluster store: the cluster store does not answer (x); local networks keep working,"
        " retrying"
    ]
    assert "cluster store answers again" in caplog.text
    assert store.granted == 1 and not member.outage
