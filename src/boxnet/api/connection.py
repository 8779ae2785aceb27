"""One client connection: HTTP/1.1 framing by h11, keep-alive, HEAD, bodies, hijack, fd passing.

h11 (a sans-I/O HTTP/1.1 state machine) decides what the bytes mean: request framing
(Content-Length or chunked), whether a response may carry a body (never after HEAD, 204, 304),
chunked responses of unknown length, and whether the connection can be reused. This module owns
the socket around it, so the things h11 does not do stay possible on the same unix socket:
boxnet's fd passing (SCM_RIGHTS after a `100 Continue`) and Docker's hijacked streams (after a
`101 UPGRADED`, the socket is raw bytes both ways).

A body the handler did not read (an early error, an unknown route) is drained afterwards, up to
DRAIN_LIMIT bytes; past that, or if the client is still waiting for `100 Continue`, the
connection is closed instead, so leftover body bytes are never parsed as the next request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import h11

from boxnet import API_VERSION, __version__
from boxnet.errors import InvalidArgument

if TYPE_CHECKING:
    from boxnet.api.server import Response, Server

log = logging.getLogger("boxnet.api")

RECV_SIZE = 65536
IDLE_TIMEOUT = 300.0  # a keep-alive connection with no request for this long is closed
DRAIN_LIMIT = 1 << 20  # unread request body we read and discard to keep a connection alive
BODY_LIMIT = 64 << 20  # request bodies the API reads into memory (JSON, small uploads)

# What dockerd puts on every response; clients read them from the ping (API negotiation).
COMMON_HEADERS = (
    ("Api-Version", API_VERSION),
    ("Docker-Experimental", "false"),
    ("Ostype", "linux"),
    ("Server", f"boxnetd/{__version__} (linux)"),
)


class ClientGone(Exception):
    """The client closed the connection in the middle of a request."""


class PayloadTooLarge(InvalidArgument):
    status = 413


class Hijacked:
    """A connection after `101 UPGRADED`: the raw socket, plus what the client sent after its
    request that h11 had already read (stdin can arrive right behind the request)."""

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self.sock = sock
        self.pending = pending

    def recv(self, size: int = RECV_SIZE) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
            return data
        return self.sock.recv(size)

    def fileno(self) -> int:
        return self.sock.fileno()


class HttpConnection(socketserver.BaseRequestHandler):
    """socketserver runs `handle` in a thread of its own for every accepted connection."""

    server: Server
    request: socket.socket

    def setup(self) -> None:
        self.sock = self.request
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self.close_connection = False  # a handler can ask for the connection to end
        self.head_only = False
        self.request_headers: dict[str, str] = {}

    # -- the request loop ----------------------------------------------------------------------
    def handle(self) -> None:
        try:
            while not self.close_connection:
                try:
                    event = self._next_event(idle=True)
                except (TimeoutError, ClientGone, OSError):
                    return
                except h11.RemoteProtocolError as exc:
                    self._protocol_error(exc)
                    return
                if not isinstance(event, h11.Request):
                    return  # ConnectionClosed (or junk after a finished cycle)
                if not self._serve(event):
                    return
                if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                    return
                self.h11.start_next_cycle()
        except Exception:  # a bug: in the daemon's log, and only this connection ends
            log.exception("connection handler failed")
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()

    def _serve(self, event: h11.Request) -> bool:
        """Answer one request; False when the connection must end."""
        self.request_headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers
        }
        self.head_only = event.method == b"HEAD"
        if self.sock.gettimeout() is not None:
            self.sock.settimeout(None)  # handlers and streams use the socket blocking
        response = self.server.dispatch(self, event)
        try:
            if response.hijack is not None:
                self._hijack(response)
                return False
            self._send_response(response)
            return self._finish_request_body()
        except (OSError, ClientGone, h11.RemoteProtocolError):
            return False  # the client went away, or what it still sends cannot be parsed
        except h11.LocalProtocolError as exc:
            log.warning("cannot answer %s %r: %s", event.method, event.target, exc)
            return False

    def _next_event(self, idle: bool = False) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            # Only a connection between requests times out; a handler may wait for long.
            timeout = IDLE_TIMEOUT if idle else None
            if self.sock.gettimeout() != timeout:
                self.sock.settimeout(timeout)
            self.h11.receive_data(self.sock.recv(RECV_SIZE))

    def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.sock.sendall(data)

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = json.dumps({"message": f"bad request: {exc}"}).encode() + b"\n"
        with contextlib.suppress(OSError, h11.LocalProtocolError):
            self._send(
                h11.Response(
                    status_code=exc.error_status_hint,
                    headers=[
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        ("Connection", "close"),
                    ],
                )
            )
            self._send(h11.Data(data=body))
            self._send(h11.EndOfMessage())

    # -- request bodies ------------------------------------------------------------------------
    def read_body(self, limit: int = BODY_LIMIT) -> bytes:
        """The request body, read in full (sends `100 Continue` if the client waits for it)."""
        return b"".join(self.body_chunks(limit))

    def read_body_into(self, out: Any, limit: int) -> int:
        """The request body written to a file as it arrives (image tarballs: too big for
        memory); its size."""
        size = 0
        for chunk in self.body_chunks(limit):
            out.write(chunk)
            size += len(chunk)
        return size

    def body_chunks(self, limit: int) -> Iterator[bytes]:
        if self.h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))
        size = 0
        while True:
            try:
                event = self._next_event()
            except h11.RemoteProtocolError as exc:  # e.g. a broken chunk size
                self.close_connection = True
                raise InvalidArgument(f"malformed request body: {exc}") from None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    self.close_connection = True
                    raise PayloadTooLarge(f"request body larger than {limit} bytes")
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            elif event is h11.PAUSED:
                return  # an Upgrade request: h11 waits for our answer
            else:
                raise ClientGone()

    def _finish_request_body(self) -> bool:
        """Discard what is left of the request body; False if the connection must close."""
        if self.close_connection:
            return False
        if self.h11.their_state is not h11.SEND_BODY:
            return True
        if self.h11.client_is_waiting_for_100_continue or "100-continue" in (
            self.request_headers.get("expect", "").lower()
        ):
            return False  # it may never send the body: don't wait for it
        drained = 0
        while drained <= DRAIN_LIMIT:
            event = self._next_event()
            if not isinstance(event, h11.Data):
                return isinstance(event, h11.EndOfMessage)
            drained += len(event.data)
        return False

    # -- responses -----------------------------------------------------------------------------
    def _send_response(self, response: Response) -> None:
        headers = [*COMMON_HEADERS, *response.headers.items()]
        if response.stream is not None:
            headers.append(("Content-Type", response.content_type))
            if self.close_connection:
                headers.append(("Connection", "close"))
            # No Content-Length: h11 sends it chunked; the headers leave at once (`wait`
            # relies on that: clients see 200 before the container exits).
            self._send(_head(response.status, headers))
            if self.head_only:
                _close_iterator(response.stream)
            else:
                for chunk in response.stream:
                    if chunk:
                        self._send(h11.Data(data=chunk))
            self._send(h11.EndOfMessage())
            return
        payload = response.payload()
        if response.status not in (204, 304):
            headers.append(("Content-Type", response.content_type))
            headers.append(("Content-Length", str(len(payload))))
        if self.close_connection:
            headers.append(("Connection", "close"))
        events: list[Any] = [_head(response.status, headers)]
        if payload and not self.head_only and response.status not in (204, 304):
            events.append(h11.Data(data=payload))
        events.append(h11.EndOfMessage())
        # One write for the whole answer: a syscall less, and never a head without its body.
        self.sock.sendall(b"".join(self.h11.send(e) or b"" for e in events))

    def _hijack(self, response: Response) -> None:
        """Docker's attach/exec: `101 UPGRADED` when the client asked for `Upgrade: tcp`
        (moby answers `200 OK` otherwise), then the socket belongs to response.hijack."""
        assert response.hijack is not None
        upgrade = "tcp" in self.request_headers.get("upgrade", "").lower()
        lines = ["HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK"]
        lines.append(f"Content-Type: {response.content_type}")
        lines += ["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"]
        lines += [f"{k}: {v}" for k, v in (*COMMON_HEADERS, *response.headers.items())]
        pending = b""
        try:
            self._finish_request_body()
            pending = bytes(self.h11.trailing_data[0])
            # The head in a write of its own, before any stream byte (docker-py reads the head
            # through a buffered file, then the raw socket: bytes in the same read are lost).
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except (OSError, ClientGone, h11.ProtocolError):
            pass  # the stream's owner runs anyway: it drains the process and cleans up
        try:
            response.hijack(Hijacked(self.sock, pending))
        finally:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    # -- fd passing (see docs/API.md) ----------------------------------------------------------
    def receive_stdio(self) -> tuple[int, int, int]:
        """Ask for the client's three stdio fds: `100 Continue`, then one byte with SCM_RIGHTS."""
        self._send(h11.InformationalResponse(status_code=100, headers=[]))
        self.sock.settimeout(10)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(self.sock, 1, 3)
        finally:
            self.sock.settimeout(None)
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise InvalidArgument("attach: expected three file descriptors (stdin, stdout, stderr)")
        return fds[0], fds[1], fds[2]


REASONS = {int(x): x.phrase for x in HTTPStatus}


def _head(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    return h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, ""))


def _close_iterator(stream: Iterator[bytes]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
