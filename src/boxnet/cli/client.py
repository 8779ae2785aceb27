"""A small HTTP/1.1 client for the daemon's unix socket.

Written by hand instead of using `http.client`: that module (with `email.parser` behind it)
costs several milliseconds of start-up, and `boxnet version` must start in < 50 ms. The daemon
is local and speaks plain HTTP/1.1, so this needs only: one request per connection
(`Connection: close`), Content-Length, chunked and read-until-close bodies, `100 Continue` (for
fd passing, see attach.py) and JSON errors `{"message", "hint"}`.
"""

from __future__ import annotations

import os

# The C module itself: socket.py builds its enums at import and pulls in selectors, ~3 ms of
# the CLI's start-up; these connections need none of it (a plain AF_UNIX stream socket).
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as unix_socket

from boxnet import __version__
from boxnet.errors import BoxnetError, InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

DEFAULT_HOST = "unix:///run/boxnet.sock"
CONNECT_HINT = 'is boxnetd running? Start it with "boxnetd &" (or pass -H / set BOXNET_HOST)'
PERMISSION_HINT = (
    "the socket is owned by root with mode 0660: run boxnet as root (sudo) or as a member "
    "of the socket's group"
)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class ApiError(BoxnetError):
    """The daemon answered with an error status; `body` is its decoded JSON (or {}).

    `exit_code` is set by commands whose exit status depends on the error (run, exec).
    """

    exit_code: int | None = None

    def __init__(self, status: int, message: str, hint: str | None, body: Any = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.body = body if isinstance(body, dict) else {}


class DaemonUnreachable(BoxnetError):
    """No daemon answers at the socket (absent, refused, no permission)."""


def quote(text: str) -> str:
    """Percent-encode a path segment or query value (urllib.parse costs ~2 ms to import)."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def socket_path(host: str) -> str:
    """`unix:///run/boxnet.sock` or a bare path -> the socket's path.

    Same rule as boxnet.paths.socket_path_from_host, repeated here because importing
    boxnet.paths (pathlib, dataclasses) costs ~15 ms of CLI start-up.
    """
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if "://" in host:
        raise InvalidArgument(
            f'unsupported daemon host "{host}"',
            "boxnet talks to boxnetd over a unix socket: use unix:///path/to/boxnet.sock",
        )
    return host


class Response:
    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self, status: int, reason: str, headers: dict[str, str], body: bytes = b""
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers  # names lower-cased
        self.body = body

    def json(self) -> Any:
        from boxnet.cli import wirejson  # only the commands that read JSON pay for it

        if not self.body:
            return None
        return wirejson.loads(self.body)


class Connection:
    """One socket, one request, one response (plus an optional `100 Continue` first)."""

    def __init__(self, sock: unix_socket) -> None:
        self.sock = sock
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        content_type: str = "application/json",
    ) -> None:
        lines = [
            f"{method} {target} HTTP/1.1",
            "Host: boxnet",
            f"User-Agent: boxnet-cli/{__version__}",
            "Connection: close",
            f"Content-Length: {len(body or b'')}",
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self._buf += data
        return bool(data)

    def _readline(self) -> bytes:
        while b"\r\n" not in self._buf:
            if len(self._buf) > 65536 or not self._fill():
                raise _closed()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            if not self._fill():
                raise _closed()
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def read_head(self) -> Response:
        """Read a status line and headers; the body is left for iter_body/read_response."""
        status_line = self._readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise BoxnetError(f"the boxnet daemon sent a malformed status line: {status_line!r}")
        headers: dict[str, str] = {}
        while line := self._readline():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)

    def iter_body(self, head: Response) -> Iterator[bytes]:
        """Yield the body as it arrives: chunked, Content-Length, or until the server closes."""
        if head.status in (204, 304) or 100 <= head.status < 200:
            return
        if "chunked" in head.headers.get("transfer-encoding", "").lower():
            while True:
                size_text = self._readline().split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise BoxnetError(f"bad chunk size from the daemon: {size_text!r}") from None
                if size == 0:
                    while self._readline():  # trailers, up to the empty line
                        pass
                    return
                yield self._read_exact(size)
                self._read_exact(2)  # CRLF after each chunk
        elif "content-length" in head.headers:
            remaining = int(head.headers["content-length"])
            while remaining > 0:
                if not self._buf and not self._fill():
                    raise _closed()
                data, self._buf = self._buf[:remaining], self._buf[remaining:]
                remaining -= len(data)
                yield data
        else:
            while self._buf or self._fill():
                data, self._buf = self._buf, b""
                yield data

    def read_response(self) -> Response:
        """The final response, skipping interim 1xx ones; raises ApiError on >= 400."""
        head = self.read_head()
        while 100 <= head.status < 200:
            head = self.read_head()
        head.body = b"".join(self.iter_body(head))
        check(head)
        return head


def _closed() -> BoxnetError:
    return BoxnetError(
        "the boxnet daemon closed the connection without a complete answer",
        "look at boxnetd's log (its stderr) for what went wrong",
    )


def check(resp: Response) -> None:
    """Turn an error status into ApiError, with the daemon's message and hint."""
    if resp.status < 400:
        return
    body: Any = None
    try:
        body = resp.json()
    except ValueError:  # not JSON: fall back to the text
        pass
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        raise ApiError(resp.status, body["message"], body.get("hint"), body)
    text = resp.body.decode("utf-8", "replace").strip()
    raise ApiError(resp.status, text or f"the daemon answered {resp.status} {resp.reason}", None)


class Client:
    """Requests to the daemon at `host` (default: $BOXNET_HOST, else unix:///run/boxnet.sock)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or os.environ.get("BOXNET_HOST") or DEFAULT_HOST
        self.path = socket_path(self.host)
        if not self.host.startswith("unix://"):
            self.host = "unix://" + self.host  # messages always show the URL form

    def connect(self) -> Connection:
        sock = unix_socket(AF_UNIX, SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as err:
            sock.close()
            reason = err.strerror or str(err)
            hint = PERMISSION_HINT if isinstance(err, PermissionError) else CONNECT_HINT
            raise DaemonUnreachable(
                f"cannot connect to the boxnet daemon at {self.host}: {reason}", hint
            ) from None
        return Connection(sock)

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, object] | None = None,
        raw: bytes | None = None,
    ) -> Connection:
        """Open a connection and send a request (a JSON `body`, or `raw` bytes: a tarball);
        the caller reads the response."""
        payload, content_type = raw, "application/x-tar"
        if body is not None:
            from boxnet.cli import wirejson

            payload, content_type = wirejson.dumps(body).encode("utf-8"), "application/json"
        conn = self.connect()
        try:
            conn.send_request(method, path + encode_query(query), payload, content_type)
        except OSError as err:
            conn.close()
            raise BoxnetError(f"sending {method} {path} to the boxnet daemon: {err}") from None
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, object] | None = None,
    ) -> Response:
        with self.send(method, path, body, query) as conn:
            return conn.read_response()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, object] | None = None,
    ) -> Any:
        """request() and decode the JSON answer (None for an empty body)."""
        return self.request(method, path, body, query).json()

    def stream(
        self,
        method: str,
        path: str,
        query: Mapping[str, object] | None = None,
        headers_out: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Iterator[bytes]:
        """Yield the body as it arrives (logs -f); raises ApiError before the first chunk.
        `headers_out`, if given, receives the response headers (lower-cased names)."""
        with self.send(method, path, None, query, raw=raw) as conn:
            head = conn.read_head()
            while 100 <= head.status < 200:
                head = conn.read_head()
            if head.status >= 400:
                head.body = b"".join(conn.iter_body(head))
                check(head)
            if headers_out is not None:
                headers_out.update(head.headers)
            yield from conn.iter_body(head)


def encode_query(query: Mapping[str, object] | None) -> str:
    """`?a=1&b=x`, skipping None values; booleans as 1/0 (what the Engine API accepts)."""
    if not query:
        return ""
    items = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        items.append(f"{quote(key)}={quote(str(value))}")
    return "?" + "&".join(items) if items else ""
