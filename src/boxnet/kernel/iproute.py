"""One IPRoute for the whole daemon, used from any thread through the thread that owns it.

Why: pyroute2 0.9's synchronous IPRoute keeps its socket and asyncio event loop per thread, and
for every call from a thread other than its creator it builds a new socket, event loop and
transport and tears them down again (~0.4-0.9 ms a call). boxnetd serves every request on a
thread of its own, so each netlink verb of an attach paid that. Handing the call to one owner
thread costs a queue round trip (~30-60 us) instead.

The owner serves calls in the order they were queued, so a call can also be queued without
waiting (`defer`: the kernel's ~40 ms deletion of a bridge, after `network rm` answered): every
later call, whoever makes it, runs after it; `settle` waits for what is queued so far (for work
that reads the kernel through another socket, such as the overlap check's dumps).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute

log = logging.getLogger(__name__)

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

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._ipr: IPRoute | None = None
        self._failed: BaseException | None = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="boxnet-netlink", daemon=True
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

    def defer(
        self,
        then: Callable[[BaseException | None], None],
        name: str,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Queue a verb without waiting for it; `then(error or None)` runs in the owner thread
        once it is done. Calls queued after it (by any thread) run after it."""
        if threading.current_thread() is self._thread:
            self._run_deferred(name, args, kwargs, then)
        else:
            self._calls.put((name, args, kwargs, None, then))

    def settle(self) -> None:
        """Wait until every call queued so far (deferred ones too) is done."""
        if threading.current_thread() is not self._thread:
            done = threading.Event()
            self._calls.put(("", (), {}, None, lambda _failure: done.set()))
            done.wait()

    def close(self) -> None:
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join(timeout=5)
