"""The API's HTTP/1.1 layer (api/server.py, api/connection.py) on a real unix socket, with raw
bytes on the client side: what exactly goes over the wire after HEAD, errors with unread
bodies, 100-continue, keep-alive and a hijack."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.api import connection
from boxnet.api.server import Request, Response, Router, Server
from boxnet.errors import InvalidArgument


def build_router() -> Router:
    r = Router()

    def echo(req: Request) -> Response:
        return Response(200, {"got": req.body.decode()})

    def fail_early(_req: Request) -> Response:
        raise InvalidArgument("bad parameter")  # the body is never read

    def stream(_req: Request) -> Response:
        return Response(200, stream=iter([b"one", b"two"]), content_type="text/plain")

    def hijack(_req: Request) -> Response:
        def talk(conn: connection.Hijacked) -> None:
            data = conn.recv()  # what the client sent right behind its request
            conn.sock.sendall(b"echo:" + data)

        return Response(200, hijack=talk, content_type="application/vnd.docker.raw-stream")

    r.add("POST", "/echo", echo)
    r.add("POST", "/fail", fail_early)
    r.add("GET", "/stream", stream)
    r.add("POST", "/hijack", hijack)
    r.add("GET", "/thing", lambda _req: Response(200, {"a": 1}))
    return r


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "api.sock"
    server = Server(path, build_router())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(10_000):
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server never closed the connection")


def responses(data: bytes) -> list[tuple[str, bytes]]:
    """Split Content-Length responses: [(status line, body)]."""
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
        size = 0 if status.split()[1] == "101" else int(headers.get("content-length", 0))
        out.append((status, data[:size]))
        data = data[size:]
    return out


CLOSE = b"GET /thing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_head_answers_headers_only_on_every_route(sock_path: Path) -> None:
    with connect(sock_path) as sock:
        sock.sendall(
            b"HEAD /thing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"HEAD /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n"
            b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n" + CLOSE
        )
        data = read_until_closed(sock)
    heads = data.split(b"\r\n\r\n")
    assert [h.split(b"\r\n")[0] for h in heads[:4]] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 404 Not Found",
        b"HTTP/1.1 405 Method Not Allowed",
        b"HTTP/1.1 200 OK",
    ]
    assert b"Content-Length: 9" in heads[0]  # the GET's length, its body not sent
    assert heads[4] == b'{"a": 1}\n'  # only the last (GET) response has a body


def test_unread_bodies_are_drained_or_the_connection_closed(sock_path: Path) -> None:
    with connect(sock_path) as sock:
        sock.sendall(
            b"POST /fail HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nxxxxx"
            b"POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n" + CLOSE
        )
        got = responses(read_until_closed(sock))
    assert [s for s, _ in got] == [
        "HTTP/1.1 400 Bad Request",
        "HTTP/1.1 404 Not Found",
        "HTTP/1.1 200 OK",
        "HTTP/1.1 200 OK",
    ]
    assert got[2][1] == b'{"got": "hi!"}\n'
    # Too much to drain: the answer, then the connection closes (no parsing of the rest). The
    # answer is read before the body is sent: a server closing with unread bytes makes the
    # kernel report a reset to the client, which may then lose what was not read yet.
    big = connection.DRAIN_LIMIT * 2
    with connect(sock_path) as sock:
        sock.sendall(f"POST /fail HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\n\r\n".encode())
        data = b""
        for _ in range(1000):
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and len(body) >= int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
                break
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 400 Bad Request"), data
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed before the end
            sock.sendall(b"y" * (connection.DRAIN_LIMIT + 4096))
        try:
            rest = read_until_closed(sock)
        except ConnectionResetError:
            rest = b""  # closed, with our unread bytes on its side
    assert rest == b"", rest  # nothing after the answer: the connection closed


def test_expect_100_continue_and_streams(sock_path: Path) -> None:
    with connect(sock_path) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 \r\n\r\n"
        sock.sendall(b"ok" + b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK") and b'{"got": "ok"}\n' in data
    assert data.endswith(b"\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")  # chunked


def test_hijack_answers_101_then_the_raw_socket(sock_path: Path) -> None:
    with connect(sock_path) as sock:
        sock.sendall(
            b"POST /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Length: 0\r\n\r\nstdin-bytes"
        )
        data = read_until_closed(sock)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Upgrade: tcp" in head and b"Connection: Upgrade" in head
    assert rest == b"echo:stdin-bytes"


def test_malformed_request_gets_400_and_close(sock_path: Path) -> None:
    with connect(sock_path) as sock:
        sock.sendall(b"GET /thing HTTP/1.1\r\nno colon here\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400") and b"Connection: close" in data


def test_hundreds_of_clients_at_once(sock_path: Path) -> None:
    """All connected before any is answered: the backlog queues them, a thread serves each."""
    clients = [connect(sock_path) for _ in range(300)]
    try:
        for sock in clients:
            sock.sendall(CLOSE)
        answers = [read_until_closed(sock) for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 200 OK") and a.endswith(b'{"a": 1}\n') for a in answers)


def test_malformed_chunked_body_gets_400_and_close(sock_path: Path) -> None:
    with connect(sock_path) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n"
        )
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and b"malformed request body" in data
    with connect(sock_path) as sock:  # the same after an early error (the body is drained)
        sock.sendall(
            b"POST /fail HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n"
        )
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and data.count(b"HTTP/1.1") == 1
