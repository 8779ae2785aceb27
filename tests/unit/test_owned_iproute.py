"""OwnedIPRoute: netlink calls from any thread are served by the one thread that owns the socket.

Read-only calls on this namespace's loopback (ifindex 1) only: nothing is changed.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from boxnet.kernel.iproute import OwnedIPRoute

LOOPBACK_IFINDEX = 1  # the kernel gives lo ifindex 1 in every namespace


@pytest.fixture
def ipr() -> Iterator[OwnedIPRoute]:
    owned = OwnedIPRoute()
    yield owned
    owned.close()


def test_calls_from_other_threads_get_the_owners_answers(ipr: OwnedIPRoute) -> None:
    names: list[str] = []
    threads: list[threading.Thread] = []

    def ask() -> None:
        names.append(ipr.link("get", index=LOOPBACK_IFINDEX)[0].get_attr("IFLA_IFNAME"))
        threads.append(threading.current_thread())

    workers = [threading.Thread(target=ask) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=10)
    assert names == ["lo"] * 8
    assert ipr._thread not in threads  # asked from elsewhere, served by the owner


def test_dumps_arrive_whole(ipr: OwnedIPRoute) -> None:
    links = ipr.get_links()
    assert isinstance(links, (list, tuple))  # read in the owner thread, not a lazy iterator
    assert LOOPBACK_IFINDEX in [msg["index"] for msg in links]


def test_kernel_errors_reach_the_caller(ipr: OwnedIPRoute) -> None:
    with pytest.raises(NetlinkError) as info:
        ipr.link("get", ifname="bx-no-such-link")
    assert info.value.code == errno.ENODEV
    assert ipr.link("get", index=LOOPBACK_IFINDEX)  # and the owner thread still serves


def test_private_names_are_not_forwarded(ipr: OwnedIPRoute) -> None:
    with pytest.raises(AttributeError):
        ipr._no_such_thing  # noqa: B018


def test_deferred_calls_run_in_order_and_report(ipr: OwnedIPRoute) -> None:
    # A deferred call returns at once; its outcome reaches `then`; later calls and settle()
    # come after it (the order network rm relies on: the bridge is gone before a create).
    seen: list[object] = []
    ipr.defer(seen.append, "link", "get", ifname="bx-no-such-link")
    ipr.defer(seen.append, "link", "get", index=LOOPBACK_IFINDEX)
    ipr.settle()
    assert len(seen) == 2
    assert isinstance(seen[0], NetlinkError) and seen[0].code == errno.ENODEV
    assert seen[1] is None
    assert ipr.link("get", index=LOOPBACK_IFINDEX)  # and the owner thread still serves


def test_deferred_calls_keep_the_owner_free_and_keys_pending(ipr: OwnedIPRoute) -> None:
    # The slow lane runs deferred verbs; the owner answers meanwhile; a key is pending until
    # its verb is done, and settle(key) waits for exactly that.
    gate = threading.Event()
    seen: list[object] = []

    def slow(failure: BaseException | None) -> None:
        gate.wait(10)  # holds the lane, as a bridge deletion would
        seen.append(failure)

    ipr.defer(slow, "link", "get", index=LOOPBACK_IFINDEX, key="bx-test")
    assert ipr.link("get", index=LOOPBACK_IFINDEX)  # not behind the deferred verb
    assert ipr._pending.keys() == {"bx-test"}
    waiter = threading.Thread(target=ipr.settle, args=("bx-test",))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # still pending
    gate.set()
    waiter.join(10)
    assert not waiter.is_alive() and seen == [None] and not ipr._pending
    ipr.settle("bx-other")  # nothing pending under that name: returns at once


def test_settle_on_a_key_ends_early_once_the_callers_condition_holds(ipr: OwnedIPRoute) -> None:
    # links.await_unlisted: a retiring address is free once its link left the kernel's list,
    # before the deletion returns; settle(key, until=...) polls for that, bounded by the verb.
    gate = threading.Event()
    ready = threading.Event()
    ipr.defer(lambda _failure: gate.wait(10), "link", "get", index=LOOPBACK_IFINDEX, key="bx-a")
    waiter = threading.Thread(target=ipr.settle, args=("bx-a",), kwargs={"until": ready.is_set})
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # neither done nor the condition
    ready.set()
    waiter.join(5)
    assert not waiter.is_alive() and "bx-a" in ipr._pending  # ended early: the verb still runs
    gate.set()
    ipr.settle("bx-a", until=lambda: False)  # the verb's end bounds the wait too
    assert not ipr._pending
