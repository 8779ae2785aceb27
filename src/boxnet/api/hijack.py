"""Docker's hijacked streams: a container process's stdio carried over an upgraded connection.

The daemon makes pipes (or a pty pair with a TTY), hands their container ends to the launcher
(the same caller-supplied stdio path as boxnet's own fd-passing attach), and a Pump copies
between its ends and the client's socket: stdout and stderr in 8-byte frames (raw with a TTY),
stdin unframed from the client. The client half-closing its side (the docker CLI does at the end
of its stdin) closes the container's stdin; it is not a hang-up. A client that goes away stops
the copy to it, never the container: its output is still drained. (Logging is the shim's: it
copies the container's output to these pipes and to the log, runtime/shimio.py.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import struct
import termios
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from boxnet.api import detach, streams

if TYPE_CHECKING:
    from boxnet.api.connection import Hijacked

READ_SIZE = 65536
STDIN_BUFFER = 1 << 20  # client input held for a container that does not read (yet)
POLL_MS = 1000  # how often a pump with nothing to do asks whether it should give up


class Stdio:
    """Pipes (or a pty) between one process and the daemon.

    `container_fds` (stdin, stdout, stderr) go to the launcher and are closed here once the
    process holds them; the daemon keeps `outputs` to read and `stdin` to write (None when the
    client's stdin is not attached: the process reads /dev/null, or the pty without input)."""

    def __init__(self, *, tty: bool, stdin: bool) -> None:
        self.tty = tty
        self.master: int | None = None
        self.outputs: dict[int, int] = {}  # fd -> stream (streams.STDOUT / STDERR)
        if tty:
            self.master, slave = os.openpty()
            self.container_fds = (slave, slave, slave)
            self.stdin = self.master if stdin else None
            self.outputs[self.master] = streams.STDOUT  # a terminal has one stream
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if stdin:
                in_r, in_w = os.pipe()
                self.stdin = in_w
            else:
                in_r, self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
            self.container_fds = (in_r, out_w, err_w)
            self.outputs.update({out_r: streams.STDOUT, err_r: streams.STDERR})
        self._container_open = True
        self._lock = threading.Lock()

    def close_container_ends(self) -> None:
        """After the launch (or instead of it): our copies would keep the outputs from EOF."""
        with self._lock:
            if not self._container_open:
                return
            self._container_open = False
            for fd in set(self.container_fds):
                os.close(fd)

    def close(self) -> None:
        """Both ends, for a Stdio that is never pumped."""
        self.close_container_ends()
        fds = set(self.outputs) | ({self.stdin} if self.stdin is not None else set())
        for fd in fds:  # with a TTY, stdin is the pty master, one of the outputs
            os.close(fd)
        self.outputs, self.stdin = {}, None

    def resize(self, height: int, width: int) -> None:
        """Docker's resize: the window size of the pty (nothing to do without a TTY)."""
        if self.master is not None:
            size = struct.pack("HHHH", height, width, 0, 0)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)


class Pump:
    """Copy between a hijacked connection and a Stdio until the process's output ends.

    `send` is the set of streams the client attached; `framed` is Docker's multiplexing (False
    with a TTY, or for an exec started with Tty). With `until_finished` (an exec), the pump
    ends at `finish()` (the exit code is kept by then), sending what is buffered, even if a
    child still holds the outputs; else when the outputs end.
    `abandoned()` is asked every POLL_MS while idle: True ends the pump (a container removed
    before it was ever started)."""

    def __init__(
        self,
        conn: Hijacked,
        stdio: Stdio,
        *,
        framed: bool,
        send: frozenset[int] = frozenset({streams.STDOUT, streams.STDERR}),
        abandoned: Callable[[], bool] | None = None,
        until_finished: bool = False,
        detach_keys: bytes | None = None,
    ) -> None:
        self.conn = conn
        self.stdio = stdio
        self.framed = framed
        self.send = send
        self.abandoned = abandoned
        self.outputs = dict(stdio.outputs)
        self.stdin = stdio.stdin
        self.stdin_buffer = b""
        self.stdin_eof = False
        self.client_alive = True
        self.until_finished = until_finished
        # The client's detach keys end the pump (the process goes on); None: no keys scanned.
        self.scanner = detach.Scanner(detach_keys) if detach_keys else None
        self._wake_r, self._wake_w = os.pipe()
        self._wake_lock = threading.Lock()
        self._wake_open = True

    def finish(self) -> None:
        with self._wake_lock, contextlib.suppress(OSError):
            if self._wake_open:  # a detached pump closed the pipe already: its fd may be reused
                os.write(self._wake_w, b"x")

    def run(self) -> None:
        try:
            if self.stdin is not None:
                os.set_blocking(self.stdin, False)
                self.stdin_buffer, self.conn.pending = self.conn.pending, b""
            self._loop()
        finally:
            self._close_stdin()
            for fd in self.outputs:
                os.close(fd)
            self.outputs = {}
            with self._wake_lock:
                self._wake_open = False
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _loop(self) -> None:
        sock = self.conn.fileno()
        while self.outputs or self.until_finished:
            masks: dict[int, int] = {self._wake_r: select.POLLIN}
            for fd in self.outputs:
                masks[fd] = select.POLLIN
            if self._reads_client() and len(self.stdin_buffer) < STDIN_BUFFER:
                masks[sock] = masks.get(sock, 0) | select.POLLIN
            if self.stdin is not None and self.stdin_buffer:
                masks[self.stdin] = masks.get(self.stdin, 0) | select.POLLOUT
            poller = select.poll()
            for fd, mask in masks.items():
                poller.register(fd, mask)
            ready = poller.poll(POLL_MS)
            if not ready and self.abandoned is not None and self.abandoned():
                return
            readable = select.POLLIN | select.POLLHUP | select.POLLERR
            for fd, events in ready:
                if fd == self._wake_r:
                    self._drain_outputs()
                    return
                if fd in self.outputs and events & readable:
                    self._read_output(fd)
                if fd == sock and self._reads_client():
                    self._read_client()
                    if self.scanner is not None and self.scanner.detached:
                        return
                if fd == self.stdin and events & (select.POLLOUT | select.POLLERR):
                    self._write_stdin()

    # -- output: process -> client -------------------------------------------------------------
    def _read_output(self, fd: int) -> bool:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: a pty whose slave ends are all closed
                raise
            data = b""
        if not data:
            del self.outputs[fd]
            if fd == self.stdin:  # the pty master: input went through it too
                self.stdin = None
            os.close(fd)
            return False
        stream = self.outputs[fd]
        if self.client_alive and stream in self.send:
            try:
                self.conn.sock.sendall(streams.frame(stream, data) if self.framed else data)
            except OSError:
                self.client_alive = False  # gone: keep draining the process's output
                self.stdin_buffer = b""
                self._close_stdin()
        return True

    def _drain_outputs(self) -> None:
        """What the process wrote before it exited (children may hold the pipes open)."""
        for fd in list(self.outputs):
            os.set_blocking(fd, False)
            while fd in self.outputs and self._read_output(fd):
                pass

    # -- input: client -> process --------------------------------------------------------------
    def _reads_client(self) -> bool:
        return self.client_alive and not self.stdin_eof and self.stdin is not None

    def _read_client(self) -> None:
        try:
            data = self.conn.recv(READ_SIZE)
        except OSError:
            data = b""
            self.client_alive = False
        self._from_client(data)

    def _from_client(self, data: bytes) -> None:
        if data:
            self.stdin_buffer += self.scanner.feed(data) if self.scanner is not None else data
            return
        # The client half-closed (end of its stdin): the process sees EOF once the buffered
        # input is written. A terminal has no EOF of its own: it stays open.
        self.stdin_eof = True
        if not self.stdio.tty and not self.stdin_buffer:
            self._close_stdin()

    def _write_stdin(self) -> None:
        assert self.stdin is not None
        try:
            written = os.write(self.stdin, self.stdin_buffer[:READ_SIZE])
        except BlockingIOError:
            return
        except OSError:  # the process closed its stdin
            self.stdin_buffer = b""
            self._close_stdin()
            return
        self.stdin_buffer = self.stdin_buffer[written:]
        if self.stdin_eof and not self.stdin_buffer and not self.stdio.tty:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin is not None and self.stdin not in self.outputs:
            os.close(self.stdin)
        if self.stdin not in self.outputs:
            self.stdin = None
