"""The API server on the daemon's unix socket: routing, JSON, errors rendered once.

Handlers are plain functions `(request) -> Response`. A response is JSON (or bytes), a stream
(chunked, its headers sent at once), or a hijack (Docker's attach and exec: the handler's
callable gets the raw socket after `101 UPGRADED`). The HTTP/1.1 wire protocol lives in
api/connection.py; errors are BoxnetError categories mapped to Docker's status codes here.

Concurrency: a thread per connection (`docker run` holds three at once: attach, wait, start) and
a listen backlog of LISTEN_BACKLOG, so hundreds of clients connecting at once are queued by the
kernel rather than refused.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socketserver
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from boxnet.api.connection import HttpConnection
from boxnet.errors import BoxnetError
from boxnet.parsing import body as parsing_body

if TYPE_CHECKING:
    from boxnet.api.connection import Hijacked

log = logging.getLogger("boxnet.api")

VERSION_PREFIX = re.compile(r"^/v\d+(\.\d+)?(?=/)")
LISTEN_BACKLOG = 1024
FALSE_WORDS = ("", "0", "no", "false", "none")


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    handler: HttpConnection
    headers: dict[str, str] = field(default_factory=dict)
    _body: bytes | None = None
    query_all: dict[str, list[str]] = field(default_factory=dict)  # repeated keys (names=a&names=b)

    @property
    def body(self) -> bytes:
        """Read on first use: a handler that fails early never waits for a large upload."""
        if self._body is None:
            self._body = self.handler.read_body()
        return self._body

    def json(self) -> Any:
        """The decoded body ({} when empty); read it through boxnet.parsing.body.Field."""
        return parsing_body.decode(self.body)

    def flag(self, name: str) -> bool:
        """A boolean query parameter, read like moby: `1`, `true`, `True` are true."""
        return self.query.get(name, "").lower() not in FALSE_WORDS


@dataclass
class Response:
    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Docker's hijacked streams: called with the raw connection once the head is sent.
    hijack: Callable[[Hijacked], None] | None = None

    def payload(self) -> bytes:
        if self.status in (204, 304):
            return b""
        if self.content_type == "application/json":
            return json.dumps(self.body).encode() + b"\n"
        if isinstance(self.body, bytes):
            return self.body
        return str(self.body or "").encode()


Handler = Callable[[Request], Response]
Route = tuple[str, re.Pattern[str], Handler]


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, fn: Handler) -> None:
        # {name} is one path segment; {name:path} may hold slashes (registry/repo:tag images)
        text = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", text) + "$")
        self.routes.append((method, regex, fn))

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, path parameters, whether the path exists for another method). The first
        route added wins; HEAD falls back to the GET route (its body is then not sent)."""
        path_known = False
        fallback: tuple[Handler, dict[str, str]] | None = None
        for route_method, regex, fn in self.routes:
            m = regex.match(path)
            if m:
                path_known = True
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                if route_method == method:
                    return fn, params, True
                if method == "HEAD" and route_method == "GET" and fallback is None:
                    fallback = (fn, params)
        if fallback is not None:
            return fallback[0], fallback[1], True
        return None, {}, path_known


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, socket_path: Path, router: Router) -> None:
        self.router = router
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        if socket_path.exists() and stat.S_ISSOCK(socket_path.stat().st_mode):
            socket_path.unlink()  # stale: the caller holds the daemon lock, so nobody serves it
        old_umask = os.umask(0o117)  # 0660 from birth: no window where others could connect
        try:
            super().__init__(str(socket_path), HttpConnection)
        finally:
            os.umask(old_umask)
        os.chmod(socket_path, 0o660)

    def dispatch(self, conn: HttpConnection, event: h11.Request) -> Response:
        """Route one request and run its handler; every failure becomes an error response."""
        method = event.method.decode("latin-1")
        parts = urlsplit(event.target.decode("latin-1"))
        path = VERSION_PREFIX.sub("", parts.path)
        query_all = parse_qs(parts.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in query_all.items()}
        fn, params, known = self.router.match(method, path)
        try:
            if fn is None:
                status = 405 if known else 404
                return Response(status, {"message": f"page not found: {method} {path}"})
            for name, value in (*params.items(), *query.items()):
                parsing_body.check_parameter(name, value)  # the edge: no control characters
            request = Request(method, path, params, query, conn, conn.request_headers)
            request.query_all = query_all
            return fn(request)
        except BoxnetError as exc:
            return Response(exc.status, exc.to_json())
        except Exception as exc:
            log.exception("internal error on %s %s", method, path)
            return Response(500, {"message": f"internal error: {exc}"})
