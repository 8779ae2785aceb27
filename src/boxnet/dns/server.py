"""The serving thread: one selector over every container's resolver sockets.

The sockets are created inside each container's network namespace (kernel.netns.socket_in) but
served by one thread of the daemon, which never changes namespace; so no port 53 is ever bound
in the daemon's own namespace and a DNS server already running there cannot clash. Inside the
container they are bound to 127.0.0.11 on ephemeral ports, which 127.0.0.11:53 is redirected to
(dns.redirect): port 53 stays free for the container's own DNS server. UDP is
answered in the loop; TCP connections (rare: truncated answers) are served by a small bounded
pool of threads so a slow client cannot stall the loop.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boxnet.dns import redirect
from boxnet.dns.answer import FORWARD, Answerer
from boxnet.dns.forward import Forwarder
from boxnet.dns.sockets import forget, open_sockets
from boxnet.dns.table import NameTable
from boxnet.dns.tcp import serve_tcp_connection
from boxnet.errors import KernelError

log = logging.getLogger("boxnet.dns")

RESOLVER_IP = redirect.RESOLVER_IP
BATCH = 64  # datagrams read per readiness event
TCP_WORKERS = 8
ACK_TIMEOUT = 5.0


@dataclass(eq=False)
class Slot:
    """One served container: its two sockets and where its forwarded queries go."""

    container_id: str
    udp: socket.socket
    tcp: socket.socket
    upstreams: tuple[str, ...]

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


class Resolver:
    def __init__(self, ports_dir: Path | None = None) -> None:
        # Where each container's resolver ports are remembered for the next daemon (dns.sockets).
        self._ports_dir = ports_dir
        self._selector = selectors.DefaultSelector()
        self._answerer = Answerer(NameTable())
        self._forwarder = Forwarder(self._selector)
        self._slots: dict[str, Slot] = {}
        self._commands: queue.SimpleQueue[tuple[Callable[[], None], threading.Event]] = (
            queue.SimpleQueue()
        )
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._tcp_pool = ThreadPoolExecutor(TCP_WORKERS, thread_name_prefix="boxnet-dns-tcp")
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="boxnet-dns", daemon=True)
        self._thread.start()

    # -- called from the daemon's other threads ----------------------------------------------
    def set_table(self, table: NameTable) -> None:
        """New answers from now on (a fresh Answerer also drops the answer cache)."""
        self._answerer = Answerer(table)

    def add(self, container_id: str, netns_path: str | Path, upstreams: tuple[str, ...]) -> None:
        """Serve the container: open its sockets now, so its first process can resolve."""
        for _container_id, error in self.add_many([(container_id, netns_path, upstreams)]):
            raise error

    def add_many(
        self, items: Sequence[tuple[str, str | Path, tuple[str, ...]]]
    ) -> list[tuple[str, Exception]]:
        """add() for many containers (a restarted daemon adopting them): sockets opened here,
        all registered in ONE call to the serving thread (2 calls per container cost ~0.2 s
        at 1,000). Returns the containers that could not be served, with why."""
        slots, failed = self.open_many(items)
        if slots:
            self.register(slots)
        return failed

    def open_many(
        self, items: Sequence[tuple[str, str | Path, tuple[str, ...]]]
    ) -> tuple[list[Slot], list[tuple[str, Exception]]]:
        """The containers' sockets, bound and with 127.0.0.11:53 redirected to them, not yet
        served (register): a query that comes first waits in its socket. Also the containers
        that could not have theirs, with why."""
        # (reading _slots here is safe: only the serving thread writes it)
        known = [item[0] for item in items if item[0] in self._slots]
        if known:  # their sockets hold the ports the new ones should get again

            def unregister_known() -> None:
                for container_id in known:
                    self._unregister(container_id)

            self._call(unregister_known)
        slots: list[Slot] = []
        failed: list[tuple[str, Exception]] = []
        for container_id, netns_path, upstreams in items:
            try:
                udp, tcp = open_sockets(netns_path, self._ports_file(container_id))
            except Exception as exc:  # one container's namespace: reported, the others served
                failed.append((container_id, exc))
                continue
            slots.append(Slot(container_id, udp, tcp, upstreams))
        return slots, failed

    def register(self, slots: Sequence[Slot]) -> None:
        """Serve these slots of open_many from now on: one call to the serving thread."""

        def register_all() -> None:
            for slot in slots:
                self._slots[slot.container_id] = slot
                self._selector.register(slot.udp, selectors.EVENT_READ, ("udp", slot))
                self._selector.register(slot.tcp, selectors.EVENT_READ, ("tcp", slot))

        self._call(register_all)

    def _unregister(self, container_id: str) -> None:
        """On the serving thread: drop the container's slot and close its sockets."""
        slot = self._slots.pop(container_id, None)
        if slot is not None:
            self._selector.unregister(slot.udp)
            self._selector.unregister(slot.tcp)
            slot.close()

    def remove(self, container_id: str) -> None:
        """Stop serving the container and close its sockets; unknown ids are fine."""

        self._call(lambda: self._unregister(container_id))

    def forget(self, container_id: str) -> None:
        """Stop serving the container for good: its namespace is gone or going."""
        self.remove(container_id)
        forget(self._ports_file(container_id))

    def _ports_file(self, container_id: str) -> Path | None:
        return self._ports_dir / container_id[:12] if self._ports_dir is not None else None

    def served(self) -> set[str]:
        return set(self._slots)

    def close(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        self._tcp_pool.shutdown(wait=False, cancel_futures=True)
        for slot in list(self._slots.values()):
            slot.close()
        self._slots.clear()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _call(self, fn: Callable[[], None]) -> None:
        """Run fn on the serving thread (the only one touching the selector) and wait."""
        if self._stopping:
            return
        done = threading.Event()
        self._commands.put((fn, done))
        os.write(self._wake_w, b"x")
        if not done.wait(ACK_TIMEOUT):
            raise KernelError("the DNS resolver thread did not answer", hint="see boxnetd's log")

    # -- the serving thread --------------------------------------------------------------------
    def _loop(self) -> None:
        timeout: float | None = None
        while not self._stopping:
            try:
                events = self._selector.select(timeout)
                for key, _mask in events:
                    kind, obj = key.data
                    if kind == "udp":
                        self._serve_udp(obj)
                    elif kind == "upstream":
                        self._forwarder.on_readable(obj)
                    elif kind == "tcp":
                        self._accept(obj)
                    else:
                        self._run_commands()
                timeout = self._forwarder.expire(time.monotonic())
            except Exception:  # one bad packet must never stop name resolution
                log.exception("dns: serving loop")

    def _run_commands(self) -> None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                fn, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:
                log.exception("dns: command")
            finally:
                done.set()

    def _serve_udp(self, slot: Slot) -> None:
        answerer = self._answerer
        for _ in range(BATCH):
            try:
                query, client = slot.udp.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            response = answerer.decide(slot.container_id, query)
            if response is FORWARD:
                sock = slot.udp

                def reply(data: bytes, sock: socket.socket = sock, to: Any = client) -> None:
                    sock.sendto(data, to)

                self._forwarder.forward(query, slot.upstreams, reply)
            elif response:
                try:
                    slot.udp.sendto(response, client)
                except OSError as exc:
                    log.debug("dns: reply to %s: %s", client, exc)

    def _accept(self, slot: Slot) -> None:
        try:
            conn, _addr = slot.tcp.accept()
        except OSError:
            return
        self._tcp_pool.submit(
            serve_tcp_connection, conn, lambda q: self._answerer.decide(slot.container_id, q),
            slot.upstreams,
        )  # fmt: skip
