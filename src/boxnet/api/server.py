"""HTTP/1.1 on the daemon's unix socket: routing, JSON, errors rendered once.

Handlers are plain functions `(request) -> Response`; a few (logs -f, attach-start) write to the
connection themselves. Errors are BoxnetError categories mapped to Docker's status codes here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import socketserver
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from boxnet.errors import BoxnetError, InvalidArgument
from boxnet.parsing import body as parsing_body

log = logging.getLogger("boxnet.api")

VERSION_PREFIX = re.compile(r"^/v\d+(\.\d+)?(?=/)")


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    handler: Handler

    def json(self) -> Any:
        """The decoded body ({} when empty); read it through boxnet.parsing.body.Field."""
        return parsing_body.decode(self.body)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Docker's hijacked streams: no chunked framing; the body ends when the connection closes.
    raw_stream: bool = False


Route = tuple[str, re.Pattern[str], Callable[[Request], Response | None]]


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, fn: Callable[[Request], Response | None]) -> None:
        # {name} is one path segment; {name:path} may hold slashes (registry/repo:tag images)
        text = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", text) + "$")
        self.routes.append((method, regex, fn))

    def match(
        self, method: str, path: str
    ) -> tuple[Callable[[Request], Response | None] | None, dict[str, str], bool]:
        path_known = False
        for route_method, regex, fn in self.routes:
            m = regex.match(path)
            if m:
                path_known = True
                if route_method == method:
                    return fn, {k: unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_known


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, "api", *args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = VERSION_PREFIX.sub("", parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fn, params, known = self.server.router.match(self.command, path)
        try:
            if fn is None:
                status = 405 if known else 404
                raise _HttpError(status, f"page not found: {self.command} {path}")
            for name, value in (*params.items(), *query.items()):
                parsing_body.check_parameter(name, value)  # the edge: no control characters
            request = Request(self.command, path, params, query, body, self)
            response = fn(request)
        except _HttpError as exc:
            self.send_json(exc.status, {"message": exc.message})
            return
        except BoxnetError as exc:
            self.send_json(exc.status, exc.to_json())
            return
        except Exception as exc:
            log.exception("internal error on %s %s", self.command, path)
            self.send_json(500, {"message": f"internal error: {exc}"})
            return
        if response is not None:
            self.send(response)

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _dispatch

    def send_json(self, status: int, body: Any) -> None:
        self.send(Response(status, body))

    def send(self, response: Response) -> None:
        if response.stream is not None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            if response.raw_stream:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in response.stream:
                    if chunk and response.raw_stream:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    elif chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                if not response.raw_stream:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return
        if response.status in (204, 304):
            payload = b""
        elif response.content_type == "application/json":
            payload = json.dumps(response.body).encode() + b"\n"
        elif isinstance(response.body, bytes):
            payload = response.body
        else:
            payload = str(response.body or "").encode()
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Api-Version", "1.43")
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    # -- fd passing (see docs/API.md) --------------------------------------------------------------
    def receive_stdio(self) -> tuple[int, int, int]:
        """Ask for the client's three stdio fds: `100 Continue`, then one byte with SCM_RIGHTS."""
        self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.wfile.flush()
        sock: socket.socket = self.connection
        sock.settimeout(10)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 3)
        finally:
            sock.settimeout(None)
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise InvalidArgument("attach: expected three file descriptors (stdin, stdout, stderr)")
        return fds[0], fds[1], fds[2]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, socket_path: Path, router: Router) -> None:
        self.router = router
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        if socket_path.exists() and stat.S_ISSOCK(socket_path.stat().st_mode):
            socket_path.unlink()  # stale: the caller holds the daemon lock, so nobody serves it
        old_umask = os.umask(0o117)  # 0660 from birth: no window where others could connect
        try:
            super().__init__(str(socket_path), Handler)
        finally:
            os.umask(old_umask)
        os.chmod(socket_path, 0o660)
