"""DNS over TCP (RFC 7766 framing: a 2-byte length before each message), one connection per
worker thread; forwarded over TCP too, because a client only uses TCP after a truncated answer."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from ipaddress import ip_address

from boxnet.dns.answer import FORWARD, servfail

log = logging.getLogger("boxnet.dns")

IDLE_TIMEOUT = 5.0
UPSTREAM_TIMEOUT = 2.0
MAX_QUERIES = 100  # per connection, to bound a worker's time


def _read_exact(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_message(conn: socket.socket) -> bytes | None:
    head = _read_exact(conn, 2)
    if head is None:
        return None
    return _read_exact(conn, struct.unpack("!H", head)[0])


def write_message(conn: socket.socket, data: bytes) -> None:
    conn.sendall(struct.pack("!H", len(data)) + data)


def ask_upstream_tcp(query: bytes, upstreams: tuple[str, ...]) -> bytes:
    for server in upstreams:
        family = socket.AF_INET6 if ip_address(server).version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as up:
                up.settimeout(UPSTREAM_TIMEOUT)
                up.connect((server, 53))
                write_message(up, query)
                answer = read_message(up)
        except OSError as exc:
            log.debug("dns: upstream %s over TCP: %s", server, exc)
            continue
        if answer is not None and len(answer) >= 12 and answer[:2] == query[:2]:
            return answer
    return servfail(query)


def serve_tcp_connection(
    conn: socket.socket,
    decide: Callable[[bytes], bytes | None],
    upstreams: tuple[str, ...],
) -> None:
    with conn:
        conn.setblocking(True)
        conn.settimeout(IDLE_TIMEOUT)
        try:
            for _ in range(MAX_QUERIES):
                query = read_message(conn)
                if query is None:
                    return
                response = decide(query)
                if response is FORWARD:
                    response = ask_upstream_tcp(query, upstreams)
                if response:
                    write_message(conn, response)
        except OSError as exc:
            log.debug("dns: TCP client: %s", exc)
