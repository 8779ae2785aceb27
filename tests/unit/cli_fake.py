"""A fake boxnetd for the CLI's unit tests: a tiny threaded HTTP server on a unix socket,
in-process, with the fd-passing attach handshake (used by test_cli_client and test_cli_verbs;
the `daemon` fixture is in this directory's conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable

from boxnet.cli.main import main

Handler = Callable[["Request"], None]


class Request:
    def __init__(self, conn: socket.socket, method: str, target: str, body: bytes) -> None:
        self.conn = conn
        self.method = method
        self.path, _, self.query_string = target.partition("?")
        self.query = dict(p.split("=", 1) for p in self.query_string.split("&") if p)
        self.body = json.loads(body) if body else None

    def send(self, status: int, body: object = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)

    def send_raw(self, data: bytes) -> None:
        self.conn.sendall(data)


class FakeDaemon:
    """Routes: (METHOD, path) -> handler(Request). Every request is recorded."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.host = f"unix://{path}"
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        daemon = self

        class RequestHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(1)  # byte by byte: never read past the headers
                    if not chunk:
                        return
                    data += chunk
                head, _, _ = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = {
                    k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                body = b""
                while len(body) < length:
                    body += conn.recv(length - len(body))
                req = Request(conn, method, target, body)
                daemon.requests.append(req)
                handler = daemon.routes.get((method, req.path))
                if handler is None:
                    req.send(404, {"message": f"no route {method} {req.path}"})
                else:
                    handler(req)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, RequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, status: int = 200, body: object = None) -> None:
        self.routes[(method, path)] = lambda req: req.send(status, body)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cli(daemon: FakeDaemon, *argv: str) -> int:
    return main(["-H", daemon.host, *argv])


CID = "c0" * 32


def attach_handler(output: bytes, status: int = 200, body: object = None) -> Handler:
    """attach-start: 100 Continue, receive three fds, write to the received stdout."""

    def handle(req: Request) -> None:
        req.send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        msg, fds, _, _ = socket.recv_fds(req.conn, 1, 3)
        req.fds_received = len(fds)  # type: ignore[attr-defined]
        req.marker = msg  # type: ignore[attr-defined]
        os.write(fds[1], output)
        for fd in fds:
            os.close(fd)
        req.send(status, body if body is not None else {"Id": CID})

    return handle
