"""Docker's attach, start, wait, resize and exec start, for the docker CLI's `run`, `start -a`
and `exec`.

`docker run` (without -d) sends create, then attach (hijacked: 101 UPGRADED), then wait, then
start, on three connections at once. The attach makes the container's pipes (or pty) right away,
so stdin the client sends before the start waits in the pipe; the start below launches the
container on those pipes (runtime's caller-supplied stdio, the path boxnet's own CLI uses with
SCM_RIGHTS) and the attach's Pump copies between them and the connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from boxnet.api import detach, streams
from boxnet.api.hijack import Pump, Stdio
from boxnet.api.logs import logs_response
from boxnet.api.server import Request, Response, Router
from boxnet.core.waiting import waiter
from boxnet.errors import BoxnetError, Conflict, InvalidArgument, NotFound, NotModified, Unavailable
from boxnet.model import Container, State
from boxnet.parsing.body import Field
from boxnet.runtime.shimio import STDIN_FIFO

if TYPE_CHECKING:
    from boxnet.api.connection import Hijacked
    from boxnet.core.controller import Controller


class Attachments:
    """Stdio made by an attach, by container id: pending until the container starts, then
    active (for resize) until its output ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: dict[str, Stdio] = {}
        self.active: dict[str, Stdio] = {}

    def add(self, key: str, stdio: Stdio, *, active: bool = False) -> None:
        with self._lock:
            if key in self.pending:
                stdio.close()
                raise Conflict(f"container {key[:12]} already has an attach waiting for its start")
            (self.active if active else self.pending)[key] = stdio

    def take(self, key: str) -> Stdio | None:
        with self._lock:
            stdio = self.pending.pop(key, None)
            if stdio is not None:
                self.active[key] = stdio
            return stdio

    def drop(self, key: str, stdio: Stdio) -> None:
        with self._lock:
            for table in (self.pending, self.active):
                if table.get(key) is stdio:
                    del table[key]

    def find(self, key: str) -> Stdio | None:
        with self._lock:
            return self.active.get(key) or self.pending.get(key)


def register(r: Router, ctl: Controller) -> None:
    """Routes added before the plain ones in routes.py, so these answer (the first match wins)."""
    c = ctl.containers
    attachments = Attachments()
    exec_stdio = Attachments()

    def attach(req: Request) -> Response:
        target = c.find(req.params["id"])
        keys = detach.parse(req.query.get("detachKeys", ""))  # refused before the 101
        if target.state == State.RUNNING or not req.flag("stream"):
            return _attach_running(ctl, target, req, keys)
        stdin = req.flag("stdin") and target.spec.open_stdin
        stdio = Stdio(tty=target.spec.tty, stdin=stdin)
        send = frozenset(
            s
            for s, name in ((streams.STDOUT, "stdout"), (streams.STDERR, "stderr"))
            if req.flag(name)
        )
        attachments.add(target.id, stdio)  # before the 101: the client starts right after it

        def gone() -> bool:
            with c.lock:
                never_started = attachments.pending.get(target.id) is stdio
                if never_started and ctl.records.container(target.id) is None:
                    stdio.close_container_ends()
                    return True
                return False

        def pump(conn: Hijacked) -> None:
            try:
                Pump(conn, stdio, framed=not stdio.tty, send=send, abandoned=gone,
                     detach_keys=keys if stdin else None).run()  # fmt: skip
            finally:
                attachments.drop(target.id, stdio)
                stdio.close_container_ends()

        return Response(200, hijack=pump, content_type=_content_type(stdio.tty))

    def start(req: Request) -> Response:
        target = c.find(req.params["id"])
        stdio = attachments.take(target.id)
        try:
            c.start(target.id, stdio.container_fds if stdio is not None else None)
        except NotModified:
            return Response(304)
        except BoxnetError as exc:
            if target.spec.auto_remove:  # --rm: nothing left behind; `wait` gets the code
                _discard(ctl, target.id, getattr(exc, "exit_code", 125))
            raise
        finally:
            if stdio is not None:
                stdio.close_container_ends()  # the container holds them now (or failed)
        return Response(204)

    def wait(req: Request) -> Response:
        block = waiter(c, req.params["id"], req.query.get("condition", ""))
        sock = req.handler.sock

        def body() -> Iterator[bytes]:
            code = block(lambda: _hung_up(sock))
            if code is not None:
                yield Response(body={"StatusCode": code, "Error": None}).payload()

        return Response(200, stream=body())

    def resize(req: Request) -> Response:
        target = c.find(req.params["id"])
        stdio = attachments.find(target.id)
        if stdio is not None:
            stdio.resize(*_size(req))
        return Response(200, b"", content_type="text/plain")

    def exec_resize(req: Request) -> Response:
        stdio = exec_stdio.find(req.params["id"])
        if stdio is None and c.execs.pending(req.params["id"]) is None:
            raise NotFound(f"No such exec instance: {req.params['id']}")
        if stdio is not None:
            stdio.resize(*_size(req))
        return Response(201, b"", content_type="text/plain")

    def exec_start(req: Request) -> Response:
        """Detached: 200 at once. Else hijacked; the frames follow the start body's Tty (moby),
        a pty follows the create-time Tty; the connection closes once the exit code is kept."""
        exec_id = req.params["id"]
        pending = c.execs.pending(exec_id)
        if pending is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        body = Field(req.json())
        if body["Detach"].flag():
            threading.Thread(target=_run_exec, args=(ctl, exec_id, None), daemon=True).start()
            return Response(200, b"", content_type="text/plain")  # moby: no body
        raw = body["Tty"].flag()
        stdio = Stdio(tty=pending.tty, stdin=pending.stdin)
        exec_stdio.add(exec_id, stdio, active=True)

        def pump(conn: Hijacked) -> None:
            keys = pending.detach_keys or detach.parse("")
            copier = Pump(conn, stdio, framed=not raw, until_finished=True,
                          detach_keys=keys if pending.stdin else None)  # fmt: skip

            def run() -> None:
                try:
                    _run_exec(ctl, exec_id, stdio)
                finally:
                    copier.finish()

            # Started only now: the 101 is out before the process can write (docker-py).
            threading.Thread(target=run, daemon=True).start()
            try:
                copier.run()
            finally:
                exec_stdio.drop(exec_id, stdio)

        return Response(200, hijack=pump, content_type=_content_type(raw))

    def ping(req: Request) -> Response:
        headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
        # moby answers HEAD with an empty body and Content-Length: 0.
        text = b"" if req.method == "HEAD" else b"OK"
        return Response(200, text, content_type="text/plain; charset=utf-8", headers=headers)

    def swarm_leave(_req: Request) -> Response:
        raise Unavailable("This node is not part of a swarm")

    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("POST", "/swarm/leave", swarm_leave)
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("POST", "/exec/{id}/start", exec_start)
    r.add("POST", "/exec/{id}/resize", exec_resize)


def _attach_running(ctl: Controller, target: Container, req: Request, keys: bytes) -> Response:
    """`docker attach` to a running container (or a stream=0 attach, which only sends the logs
    asked for): its output from the log (the past with logs=1), followed while it runs; its
    input into the STDIN_FIFO its shim made for an OpenStdin container, until the client types
    the detach keys or goes away."""
    follow = req.flag("stream") and target.state == State.RUNNING
    query = {name: "1" if req.flag(name) else "0" for name in ("stdout", "stderr")}
    query.update(tail="all" if req.flag("logs") else "0", follow="1" if follow else "0")
    detached = threading.Event()
    following = threading.Event()  # the log is read to its end: later output will be sent
    stdin = req.flag("stdin") and follow and target.spec.open_stdin

    def running() -> bool:
        following.set()
        current = ctl.records.container(target.id)
        alive = current is not None and current.state == State.RUNNING
        return alive and not detached.is_set()

    followed = None
    if "1" in (query["stdout"], query["stderr"]):
        followed = logs_response(
            ctl.containers.log_path(target.id), target.spec.tty, query, running
        )
    elif not stdin and not follow:
        raise InvalidArgument(
            "Bad parameters: you must choose at least one stream",
            hint="pass stdout=1 and/or stderr=1 (or stdin=1 for a running container)",
        )
    fifo = _open_stdin_fifo(ctl, target) if stdin else None

    def send_output(conn: Hijacked) -> None:
        if followed is None:
            return
        with contextlib.suppress(OSError):
            if followed.stream is None:
                # Right behind the headers, the client's HTTP reader would buffer these bytes
                # and lose them when it takes the raw socket (docker-py's attach stream=0).
                time.sleep(0.1)
                conn.sock.sendall(followed.payload())
            for chunk in followed.stream or ():
                conn.sock.sendall(chunk)

    def copy(conn: Hijacked) -> None:
        if fifo is None:
            send_output(conn)
            return
        output = threading.Thread(target=send_output, args=(conn,), daemon=True)
        output.start()
        if followed is not None:  # else what the input makes the process write could be missed
            following.wait(5)
        try:
            _copy_stdin(conn, fifo, detach.Scanner(keys), running)
        finally:
            detached.set()
            os.close(fifo)
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)  # the client sees the end of the attach
        output.join(timeout=5)

    content_type = followed.content_type if followed else _content_type(target.spec.tty)
    return Response(200, hijack=copy, content_type=content_type)


def _open_stdin_fifo(ctl: Controller, target: Container) -> int | None:
    """The write end of the container's stdin FIFO (None: it has none, or nobody reads it)."""
    path = ctl.containers.state_dir(target.id) / STDIN_FIFO
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: the container has ended; ENOENT: started before OpenStdin FIFOs
        return None


def _copy_stdin(conn: Hijacked, fifo: int, scanner: detach.Scanner, running: Any) -> None:
    """Client -> FIFO until the detach keys, the client's end of input, or the container's."""
    os.set_blocking(fifo, True)
    conn.sock.settimeout(1.0)
    for _ in range(10**9):  # bounded by the client, the container, or the keys
        try:
            data = conn.recv(65536)
        except TimeoutError:
            if not running():
                return
            continue
        except OSError:
            return
        if not data:
            return
        forward = scanner.feed(data)
        try:
            if forward:
                os.write(fifo, forward)
        except OSError:  # the container is gone
            return
        if scanner.detached:
            return


def _discard(ctl: Controller, container_id: str, exit_code: int) -> None:
    """Remove an auto-remove container whose start failed, as its exit would have."""
    c = ctl.containers
    with c.changed:
        c.recent_exits[container_id] = (exit_code, time.monotonic())
        with contextlib.suppress(BoxnetError):
            c.remove(container_id, force=True)
        c.changed.notify_all()


def _run_exec(ctl: Controller, exec_id: str, stdio: Stdio | None) -> None:
    """Run an exec to its end and keep its exit code for GET /exec/{id}/json."""
    c = ctl.containers
    fds = stdio.container_fds if stdio is not None else None
    try:
        code = c.exec_start(exec_id, fds)
    except Exception as exc:
        code = getattr(exc, "exit_code", 126)
        if stdio is not None:  # what `docker exec` shows: the reason, on the process's stderr
            with contextlib.suppress(OSError):
                os.write(stdio.container_fds[2], f"{exc}\n".encode())
    c.execs.finished(exec_id, code)  # before the stream ends: the client asks for it next
    if stdio is not None:
        stdio.close_container_ends()


def _content_type(raw: bool) -> str:
    return streams.RAW if raw else streams.MULTIPLEXED


def _size(req: Request) -> tuple[int, int]:
    try:
        return int(req.query.get("h") or 0), int(req.query.get("w") or 0)
    except ValueError as exc:
        hint = "use ?h=ROWS&w=COLUMNS"
        raise InvalidArgument(f"invalid terminal size: {exc}", hint=hint) from exc


def _hung_up(sock: socket.socket) -> bool:
    """True when the client closed a connection it should only be reading from."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
