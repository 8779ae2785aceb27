"""Network namespaces made ahead of need, between container starts.

Making a container's namespace (unshare in a thread, lo up, the sockets the start wants in it,
the IPv6 default, a libnftables context: netns.make_unbound) took 1.4 ms on a quiet daemon and
3.9 ms in one running 960 containers (bench/profile.py: other threads hold the interpreter,
and the bind mount grows with the mounts beside it), on the path of every start. The pool keeps
a few made ahead by a thread of its own, which works between starts: before each one it makes,
it waits for the caller's `quiet` (boxnetd: its lock free, so the start under way has ended). A
start takes one by giving it its file (netns.bind_unbound: one bind mount); when the pool is
empty (a burst of starts) the caller makes one inline, as without a pool.

A namespace in the pool has no file and no interface but lo: it dies with the daemon, and a
crash leaves nothing behind. `readied` does more of a start's work in it ahead (boxnetd: the
resolver's sockets and redirect); what it leaves is handed over with the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from boxnet.errors import KernelError
from boxnet.kernel import netns

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # after the kernel refused one (limits, memory): try again later


class NetnsPool:
    def __init__(
        self,
        size: int,
        prepare: Sequence[netns.SocketKind],
        nftables: bool,
        quiet: Callable[[], None] = lambda: None,
        readied: Callable[[netns.Unbound], None] | None = None,
    ) -> None:
        self.size = size
        self.prepare = tuple(prepare)
        self.nftables = nftables
        self._quiet = quiet
        # More a start would do in every such namespace, done ahead too (boxnetd: the
        # resolver's sockets bound and 127.0.0.11:53 redirected to them, dns/sockets.prebind);
        # it leaves its results in Unbound.extras for netns.take_extra.
        self._readied = readied
        self._ready: list[netns.Unbound] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.size > 0 and self._thread is None:
            thread = threading.Thread(target=self._fill, name="boxnet-netns-pool", daemon=True)
            self._thread = thread
            thread.start()

    def ready(self) -> int:
        with self._cond:
            return len(self._ready)

    def take(self, path: Path) -> bool:
        """Give a namespace made ahead its file at `path` (KernelError as netns.create_netns
        would raise); False when none is ready: the caller makes one."""
        with self._cond:
            if not self._ready:
                return False
            made = self._ready.pop()
            self._cond.notify()
        netns.bind_unbound(path, made)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, []
            self._cond.notify()
        for made in ready:
            made.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.size:
                    self._cond.wait()
                if self._closed:
                    return
            self._quiet()
            try:
                made = self._make()
            except (OSError, KernelError) as exc:
                log.warning("namespace made ahead: %s (retrying in %.0f s)", exc, RETRY_SECONDS)
                with self._cond:
                    self._cond.wait(RETRY_SECONDS)
                continue
            with self._cond:
                if self._closed:
                    made.close()
                    return
                self._ready.append(made)

    def _make(self) -> netns.Unbound:
        made = netns.make_unbound(self.prepare, self.nftables)
        if self._readied is not None:
            try:
                self._readied(made)
            except BaseException:
                made.close()
                raise
        return made
