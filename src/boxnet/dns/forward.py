"""Forwarding to upstream servers from the daemon's own namespace, inside the serving loop.

Each forwarded query gets its own connected UDP socket (so only the upstream it was sent to can
answer it) and a fresh random id; an upstream that does not answer within the timeout, or
refuses, hands the query to the next one; when all have failed the client gets SERVFAIL. At most
`max_pending` queries are in flight: beyond that the client gets SERVFAIL at once, so a flood
cannot exhaust the daemon's file descriptors.
"""

from __future__ import annotations

import heapq
import logging
import secrets
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address

from boxnet.dns.answer import servfail

log = logging.getLogger("boxnet.dns")

UPSTREAM_TIMEOUT = 2.0
MAX_PENDING = 512
MAX_ANSWER = 65535


@dataclass(eq=False)
class Pending:
    query: bytes
    upstreams: tuple[str, ...]
    reply_to: Callable[[bytes], None]
    attempt: int = 0
    deadline: float = 0.0
    sock: socket.socket | None = None
    our_id: bytes = b""
    done: bool = field(default=False)


class Forwarder:
    def __init__(
        self,
        selector: selectors.BaseSelector,
        timeout: float = UPSTREAM_TIMEOUT,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.selector = selector
        self.timeout = timeout
        self.max_pending = max_pending
        self.in_flight = 0
        self._deadlines: list[tuple[float, int, Pending]] = []
        self._seq = 0
        self._busy_logged = 0.0

    def forward(
        self, query: bytes, upstreams: tuple[str, ...], reply_to: Callable[[bytes], None]
    ) -> None:
        if not upstreams or self.in_flight >= self.max_pending:
            if upstreams and time.monotonic() - self._busy_logged > 10:
                self._busy_logged = time.monotonic()
                log.warning("dns: %d forwarded queries in flight, answering SERVFAIL", MAX_PENDING)
            reply_to(servfail(query))
            return
        self.in_flight += 1
        self._try(Pending(query, upstreams, reply_to))

    def _try(self, p: Pending) -> None:
        """Send p to its next upstream, or finish it with SERVFAIL when none is left."""
        self._drop_socket(p)
        while p.attempt < len(p.upstreams):
            server = p.upstreams[p.attempt]
            p.attempt += 1
            family = socket.AF_INET6 if ip_address(server).version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            p.our_id = secrets.token_bytes(2)
            try:
                sock.connect((server, 53))
                sock.send(p.our_id + p.query[2:])
            except OSError as exc:
                log.debug("dns: upstream %s: %s", server, exc)
                sock.close()
                continue
            p.sock = sock
            p.deadline = time.monotonic() + self.timeout
            self._seq += 1
            heapq.heappush(self._deadlines, (p.deadline, self._seq, p))
            self.selector.register(sock, selectors.EVENT_READ, ("upstream", p))
            return
        self._finish(p, servfail(p.query))

    def on_readable(self, p: Pending) -> None:
        assert p.sock is not None
        try:
            data = p.sock.recv(MAX_ANSWER)
        except BlockingIOError:
            return
        except OSError:  # ICMP port unreachable and friends: next upstream
            self._try(p)
            return
        if len(data) < 12 or data[:2] != p.our_id:
            return  # not the answer to this query: keep waiting
        self._finish(p, p.query[:2] + data[2:])

    def expire(self, now: float) -> float | None:
        """Move timed-out queries on; returns seconds until the next deadline (None: none)."""
        while self._deadlines:
            deadline, _seq, p = self._deadlines[0]
            if p.done or p.deadline != deadline:
                heapq.heappop(self._deadlines)
                continue
            if deadline > now:
                return deadline - now
            heapq.heappop(self._deadlines)
            self._try(p)
        return None

    def _finish(self, p: Pending, response: bytes) -> None:
        self._drop_socket(p)
        p.done = True
        self.in_flight -= 1
        if response:
            try:
                p.reply_to(response)
            except OSError as exc:  # the container went away meanwhile
                log.debug("dns: reply after forwarding: %s", exc)

    def _drop_socket(self, p: Pending) -> None:
        if p.sock is not None:
            self.selector.unregister(p.sock)
            p.sock.close()
            p.sock = None
