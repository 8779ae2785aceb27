"""One IPRoute for the whole daemon, used from any thread through the thread that owns it.

Why: pyroute2 0.9's synchronous IPRoute keeps its socket and asyncio event loop per thread, and
for every call from a thread other than its creator it builds a new socket, event loop and
transport and tears them down again (~0.4-0.9 ms a call). boxnetd serves every request on a
thread of its own, so each netlink verb of an attach paid that. Handing the call to one owner
thread costs a queue round trip (~30-60 us) instead.

Slow verbs can be queued without waiting (`defer`: the kernel's ~40 ms deletion of a bridge,
after `network rm` answered). They run on a second owner thread with an IPRoute of its own (the
"slow lane", made on first use), in order, so that nobody else's calls wait behind them; one
keyed by a link name is pending until done, and `settle(name)` waits for it (a network create
that reuses a bridge name), or until a condition of the caller's holds; `settle()` waits for
every deferred call queued so far.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute

log = logging.getLogger(__name__)

# How often settle(key, until=...) asks: a fraction of a millisecond against the ~20-40 ms the
# kernel takes to return from a veth's deletion.
SETTLE_POLL_S = 0.0005

# (verb, args, kwargs, the caller's box or None, the caller's event or a deferred call's `then`)
_Call = tuple[
    str,
    tuple[Any, ...],
    dict[str, Any],
    list[tuple[bool, Any]] | None,
    threading.Event | Callable[[BaseException | None], None],
]


class OwnedIPRoute:
    """Duck-types the IPRoute verbs boxnet uses (link, addr, route, brport, get_links, ...).
    Results that pyroute2 returns as lazy iterators are listed in the owner thread."""

    def __init__(self, thread_name: str = "boxnet-netlink") -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._ipr: IPRoute | None = None
        self._failed: BaseException | None = None
        self._slow: OwnedIPRoute | None = None  # the slow lane, for deferred verbs
        self._pending: dict[str, threading.Event] = {}  # link name -> its deferred verb done
        self._lock = threading.Lock()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name=thread_name, daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._failed is not None:
            raise self._failed

    def _serve(self, ready: threading.Event) -> None:
        try:
            self._ipr = IPRoute()
        except BaseException as exc:
            self._failed = exc
            ready.set()
            return
        ready.set()
        while (call := self._calls.get()) is not None:
            name, args, kwargs, box, done = call
            if box is None:  # deferred: nobody waits; `done` is told how it went
                assert not isinstance(done, threading.Event)
                self._run_deferred(name, args, kwargs, done)
                continue
            assert isinstance(done, threading.Event)
            try:
                box.append((True, self._invoke(name, args, kwargs)))
            except BaseException as exc:  # handed to the caller, raised in its thread
                box.append((False, exc))
            done.set()
        self._ipr.close()

    def _run_deferred(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        then: Callable[[BaseException | None], None],
    ) -> None:
        failure: BaseException | None = None
        try:
            if name:  # "" is settle's marker: nothing to call
                self._invoke(name, args, kwargs)
        except Exception as exc:
            failure = exc
        try:
            then(failure)
        except Exception:
            log.exception("after deferred netlink %s%s", name, args)

    def _invoke(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = getattr(self._ipr, name)(*args, **kwargs)
        if hasattr(result, "__next__"):  # a dump: read it here, in the thread that owns it
            result = list(result)
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is self._thread:
                return self._invoke(name, args, kwargs)
            box: list[tuple[bool, Any]] = []
            done = threading.Event()
            self._calls.put((name, args, kwargs, box, done))
            done.wait()
            ok, value = box[0]
            if not ok:
                raise value
            return value

        return call

    def _lane(self) -> OwnedIPRoute:
        with self._lock:
            if self._slow is None:
                self._slow = OwnedIPRoute("boxnet-netlink-slow")
            return self._slow

    def defer(
        self,
        then: Callable[[BaseException | None], None],
        name: str,
        *args: Any,
        key: str = "",
        **kwargs: Any,
    ) -> None:
        """Queue a verb on the slow lane without waiting for it; `then(error or None)` runs in
        the lane's thread once it is done. `key` (a link name) is pending until then."""
        done = threading.Event()
        if key:
            with self._lock:
                self._pending[key] = done

        def finish(failure: BaseException | None) -> None:
            try:
                then(failure)
            finally:
                with self._lock:
                    if self._pending.get(key) is done:
                        del self._pending[key]
                done.set()

        self._lane()._calls.put((name, args, kwargs, None, finish))

    def settle(self, key: str | None = None, until: Callable[[], bool] | None = None) -> None:
        """Wait for the deferred verb pending on `key`, or (no key) for every deferred verb
        queued so far. With `until`, a wait on `key` also ends as soon as until() is true
        (asked every SETTLE_POLL_S): what the caller needs may be done before the verb returns
        (links.await_unlisted)."""
        if key is not None:
            with self._lock:
                pending = self._pending.get(key)
            if pending is None:
                return
            if until is None:
                pending.wait()
                return
            while not pending.wait(SETTLE_POLL_S) and not until():
                pass  # bounded by the verb itself: its `then` sets `pending`, failed or not
            return
        with self._lock:
            lane = self._slow
        if lane is not None:
            done = threading.Event()
            lane._calls.put(("", (), {}, None, lambda _failure: done.set()))
            done.wait()

    def close(self) -> None:
        if self._slow is not None:
            self._slow.close()
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join(timeout=5)
