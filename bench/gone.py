"""When a link is really gone from a lab namespace (what `ip link` there shows), for the rows
that report the kernel's deferred work: a container's veth after `rm -f`, a network's bridge
after `network rm` (both deleted by boxnetd after it answered).

A thread of this process enters the namespace (setns changes the calling thread only: nothing
else of this process, and no namespace, changes) and polls if_nametoindex every 0.5 ms, bounded.
"""

from __future__ import annotations

import ctypes
import os
import queue
import socket
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

# (link name, give up after seconds, the answer's box, done)
_Ask = tuple[str, float, list[float], threading.Event]


class GoneWatch:
    def __init__(self, netns_path: str) -> None:
        self._asks: queue.SimpleQueue[_Ask | None] = queue.SimpleQueue()
        self._failed: list[str] = []
        entered = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(netns_path, entered), name="gone-watch", daemon=True
        )
        self._thread.start()
        entered.wait(10)
        if self._failed:
            raise OSError(self._failed[0])

    def _serve(self, path: str, entered: threading.Event) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                self._failed.append(f"setns {path}: {os.strerror(ctypes.get_errno())}")
                entered.set()
                return
        finally:
            os.close(fd)
        entered.set()
        while (ask := self._asks.get()) is not None:
            name, limit, box, done = ask
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:  # bounded
                try:
                    socket.if_nametoindex(name)
                except OSError:
                    break
                time.sleep(0.0005)
            box.append(time.perf_counter())
            done.set()

    def gone_ms(self, name: str, since: float, limit: float = 5.0) -> float:
        """Milliseconds from perf_counter() `since` until `name` is absent (or `limit` s)."""
        box: list[float] = []
        done = threading.Event()
        self._asks.put((name, limit, box, done))
        done.wait(limit + 5)
        return (box[0] - since) * 1000 if box else limit * 1000

    def close(self) -> None:
        self._asks.put(None)
        self._thread.join(5)


def raw_bridge_ms(netns_path: str, rounds: int) -> tuple[list[float], list[float]]:
    """The kernel's own cost of a network's bridge, in the namespace at netns_path: (create =
    link add + up + gateway address, delete = link del) in ms, `rounds` times, with pyroute2
    from a thread inside it (boxnetd's netlink verbs, nothing around them)."""
    from pyroute2 import IPRoute

    out: tuple[list[float], list[float]] = ([], [])
    failed: list[BaseException] = []

    def work() -> None:
        fd = os.open(netns_path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns_path}")
        finally:
            os.close(fd)
        ipr = IPRoute()
        try:
            for i in range(rounds):
                began = time.perf_counter()
                ipr.link("add", ifname=f"bxrawbr{i}", kind="bridge")
                index = ipr.link_lookup(ifname=f"bxrawbr{i}")[0]
                ipr.link("set", index=index, state="up")
                ipr.addr("add", index=index, address=f"10.214.{i % 256}.1", prefixlen=24)
                made = time.perf_counter()
                ipr.link("del", index=index)
                out[0].append((made - began) * 1000)
                out[1].append((time.perf_counter() - made) * 1000)
        finally:
            ipr.close()

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=guarded, name="raw-bridge", daemon=True)
    thread.start()
    thread.join(120)
    if failed:
        raise failed[0]
    return out
