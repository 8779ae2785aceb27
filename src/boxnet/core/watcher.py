"""Learns when shims exit, via pidfds: works for shims the daemon started and for shims it
adopted after a restart (which are not its children)."""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

from boxnet.kernel import fds

log = logging.getLogger("boxnet.watcher")


class ShimWatcher:
    def __init__(self, on_exit: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._by_fd: dict[int, str] = {}
        # epoll, not poll: a poll() call hands the kernel every pidfd (1,000 with 1,000
        # containers) and Python rebuilds that array after each register, which every start
        # did (waking this thread through a pipe). An fd added to an epoll set is watched by
        # the epoll_wait already under way: no wake-up at all.
        self._poll = select.epoll()
        self._thread = threading.Thread(target=self._run, name="boxnet-watcher", daemon=True)
        self._thread.start()

    def watch(self, container_id: str, shim_pid: int, pidfd: int | None = None) -> bool:
        """Start watching (taking ownership of `pidfd` if given: it was opened while the shim
        was known to be ours, so no PID reuse can fool us); False if the shim is already gone."""
        if pidfd is None:
            try:
                pidfd = os.pidfd_open(shim_pid)
            except ProcessLookupError:
                return False
        fd = fds.park(pidfd)  # held as long as the container runs (kernel/fds.py)
        with self._lock:
            self._by_fd[fd] = container_id
            self._poll.register(fd, select.EPOLLIN)
        return True

    def _run(self) -> None:
        while True:
            for fd, _event in self._poll.poll():
                with self._lock:
                    container_id = self._by_fd.pop(fd, None)
                    self._poll.unregister(fd)
                os.close(fd)
                if container_id is None:
                    continue
                try:
                    self._on_exit(container_id)
                except Exception:
                    log.exception("handling the exit of %s failed", container_id[:12])
