"""Interactive sessions: hand our stdio (or a pty's slave) to the daemon, relay a terminal.

Protocol (docs/API.md "fd passing"): on a new connection, POST .../attach-start with
Content-Length 0; after the daemon's `100 Continue`, send one byte `F` with SCM_RIGHTS carrying
stdin, stdout and stderr. The container's shim then copies its output to our fds (and to its
log): no copying through the daemon, and no multiplexed streams to decode.

With -t, the CLI opens a pty, passes its slave three times, and relays between its own terminal
and the pty master until the process is gone (like `docker run -it`). The window size is copied
at start and on SIGWINCH straight onto the master: no API call is needed for resizing (a
container's shim, which has a pty of its own, gets the size from ours: runtime/shimio.py).
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
import select
import signal
import socket
import sys
from _socket import socket as unix_socket
from collections.abc import Iterator

from boxnet.cli.client import Client, Connection, check, quote
from boxnet.errors import BoxnetError

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

# Signals `run` forwards to the container (Docker's --sig-proxy); SIGWINCH is handled locally.
PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
FORCE_DETACH_AFTER = 3  # the 3rd Ctrl-C leaves the CLI even if the container ignores SIGINT


class Stdio:
    """The three fds to pass, and the pty master to relay when a tty was asked for."""

    def __init__(self, *, tty: bool, interactive: bool) -> None:
        self.master: int | None = None
        self._after_send: list[int] = []  # our copies of what we passed, closed once sent
        if tty:
            self.master, slave = os.openpty()
            self._after_send.append(slave)
            self.fds = [slave, slave, slave]
            copy_window_size(self.master)
        else:
            stdin = 0
            if not interactive:
                # Without -i the container must not read our terminal (Docker gives it nothing).
                stdin = os.open(os.devnull, os.O_RDONLY)
                self._after_send.append(stdin)
            self.fds = [stdin, 1, 2]

    def sent(self) -> None:
        # SCM_RIGHTS took its own references at send time; ours would keep the pty open
        # after the container exits.
        for fd in self._after_send:
            os.close(fd)
        self._after_send = []

    def close(self) -> None:
        self.sent()
        if self.master is not None:
            os.close(self.master)
            self.master = None


def attach_start(client: Client, path: str, fds: list[int]) -> Connection:
    """Send an attach-start request and our fds; return the connection, final answer pending."""
    conn = client.send("POST", path)
    try:
        head = conn.read_head()
        if head.status != 100:
            head.body = b"".join(conn.iter_body(head))
            check(head)
            raise BoxnetError(
                f"the boxnet daemon answered {head.status} to {path} instead of 100 Continue",
                "the daemon and the CLI disagree on the fd-passing protocol: update both",
            )
        # socket.send_fds, on the client's bare _socket.socket (cli/client.py)
        rights = array.array("i", fds)
        conn.sock.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
    except BaseException:
        conn.close()
        raise
    return conn


def _window_size_source() -> int | None:
    for fd in (0, 1):
        if os.isatty(fd):
            return fd
    return None


def copy_window_size(master: int) -> None:
    import fcntl
    import termios

    source = _window_size_source()
    if source is None:
        return
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """Raw mode on our stdin for `-it`, so keys (Ctrl-C too) go to the container's tty."""
    if not enabled:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def relay(master: int, until: unix_socket | None, interactive: bool) -> None:
    """Copy our stdin to the pty and the pty to our stdout until `until` becomes readable
    (None: until every holder of the pty's slave has closed it)."""
    raw = interactive and os.isatty(0)
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(master))
    try:
        with _raw_terminal(raw):
            watch: list[Any] = [master] + ([until] if until else []) + ([0] if interactive else [])
            while master in watch:
                readable = select.select(watch, [], [])[0]
                if master in readable and not _pump(master, 1):
                    watch.remove(master)  # every slave is closed: nothing more will come
                if 0 in readable and not _pump(0, master):
                    watch.remove(0)
                if until in readable:
                    break
            # The process has exited: what it wrote last is still in the pty's buffer.
            os.set_blocking(master, False)
            with contextlib.suppress(BlockingIOError):
                while _pump(master, 1):
                    pass
    finally:
        signal.signal(signal.SIGWINCH, old_winch)


def _pump(source: int, target: int) -> bool:
    try:
        data = os.read(source, 65536)
    except OSError as err:
        if err.errno == errno.EIO:  # pty master with no slave left
            return False
        raise
    if data:
        _write_all(target, data)
    return bool(data)


@contextlib.contextmanager
def _signal_proxy(client: Client, cid: str) -> Iterator[None]:
    """Forward signals we receive to the container (POST /containers/{id}/kill)."""
    interrupts = 0

    def forward(signum: int, frame: object) -> None:
        nonlocal interrupts
        name = signal.Signals(signum).name
        if signum == signal.SIGINT:
            interrupts += 1
            if interrupts >= FORCE_DETACH_AFTER:
                sys.stderr.write("\nboxnet: detached; the container keeps running\n")
                raise KeyboardInterrupt
        with contextlib.suppress(BoxnetError, OSError):
            client.request("POST", f"/containers/{quote(cid)}/kill", query={"signal": name})

    previous = {}
    for name in PROXIED:
        signum = getattr(signal, name)
        previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_container(client: Client, cid: str, *, tty: bool, interactive: bool) -> int:
    """Start a created container on our stdio, wait for it, return its exit code."""
    stdio = Stdio(tty=tty, interactive=interactive)
    try:
        with attach_start(
            client, f"/boxnet/containers/{quote(cid)}/attach-start", stdio.fds
        ) as conn:
            stdio.sent()
            conn.read_response()  # {"Id": ...}: the process runs
        with (
            _signal_proxy(client, cid),
            client.send("POST", f"/containers/{quote(cid)}/wait") as waiter,
        ):
            # Until the pty closes: the daemon answers `wait` with its head at once (Docker's
            # way), so the socket turns readable long before the exit.
            if stdio.master is not None:
                relay(stdio.master, None, interactive)
            result = waiter.read_response().json() or {}
    finally:
        stdio.close()
    return _exit_code(result, "StatusCode")


def run_exec(client: Client, exec_id: str, *, tty: bool, interactive: bool) -> int:
    """Start an exec on our stdio; its attach-start answers when the process has exited."""
    stdio = Stdio(tty=tty, interactive=interactive)
    try:
        with attach_start(client, f"/boxnet/exec/{quote(exec_id)}/attach-start", stdio.fds) as conn:
            stdio.sent()
            if stdio.master is not None:
                relay(stdio.master, conn.sock, interactive)
            result = conn.read_response().json() or {}
    finally:
        stdio.close()
    return _exit_code(result, "ExitCode")


def _exit_code(result: Any, key: str) -> int:
    code = result.get(key) if isinstance(result, dict) else None
    if not isinstance(code, int):
        raise BoxnetError(f"the boxnet daemon's answer has no {key}: {result!r}")
    error = result.get("Error")
    if isinstance(error, dict) and error.get("Message"):
        sys.stderr.write(f"Error: {error['Message']}\n")
    return code
