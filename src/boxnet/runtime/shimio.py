"""The container's output, owned by its shim: copied to the attached client (if any) and logged.

Loaded by shim.py (see `load_sibling` there), so stand-alone like it: cheap stdlib/builtin
imports only, no boxnet. The container never writes to the client's fds or the log itself: it
gets pipes (stdout, stderr) or a pty the shim made, and `relay` copies each chunk to the attached
fd and to the log. So `run` with or without -d, `start -a` and restarts all land in one log.

The log is Docker's json-file format, one record per line: {"log": "hello\\n", "stream":
"stdout", "time": "2026-12-04T16:53:58.123456789Z"}. Bytes that are not UTF-8 are kept with
surrogate escapes (\\udcXX), so the reader (`boxnet.runtime.logfile`) gives back the exact bytes.
Rotation: when a write would take the file past max_size, container.log becomes container.log.1
(.1 becomes .2, ...), keeping at most max_files files.
"""

from __future__ import annotations

import _json
import errno
import fcntl
import os
import select
import time

MYPY = False
if MYPY:  # typing imports `re`; only the type checker needs it
    from typing import Any

MAX_RECORD = 16 * 1024  # Docker's cap on one record: a longer line is cut in pieces
TIOCGWINSZ, TIOCSWINSZ, TIOCSCTTY = 0x5413, 0x5414, 0x540E
STDIN_FIFO = "stdin"  # in the state dir: a detached OpenStdin container's input (docker attach)


def rfc3339(ns: int) -> str:
    """Docker's fixed-width RFC 3339 (nanoseconds, UTC), as its json-file driver writes."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def write_all(fd: int, data: bytes) -> None:
    """Write everything, also to a non-blocking fd (the client's may be)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def open_fifo(path: str) -> int:
    """A fresh FIFO at path (a restart's run gets its own), opened read-write."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


class LogWriter:
    """Appends json-file records to path, one per line of output, rotating by size."""

    def __init__(self, path: str, max_size: int = 0, max_files: int = 1) -> None:
        self.path, self.max_size, self.max_files = path, max_size, max(1, max_files)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size  # a restart appends to the previous run's log
        self.partial: dict[str, bytes] = {}  # per stream: the line not yet ended

    def _open(self, flags: int = 0) -> int:
        mode = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | flags
        return os.open(self.path, mode, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        """Log a chunk: whole lines now, the rest when its line ends (or at MAX_RECORD)."""
        lines = (self.partial.pop(stream, b"") + data).split(b"\n")  # Docker splits on \n only
        rest = lines.pop()
        records = [line + b"\n" for line in lines]
        while len(rest) >= MAX_RECORD:
            records.append(rest[:MAX_RECORD])
            rest = rest[MAX_RECORD:]
        if rest:
            self.partial[stream] = rest
        self._emit(stream, records)

    def flush(self, stream: str) -> None:
        """The stream ended: log its unfinished line as it is."""
        rest = self.partial.pop(stream, b"")
        if rest:
            self._emit(stream, [rest])

    def _emit(self, stream: str, records: list[bytes]) -> None:
        if not records:
            return
        now = rfc3339(time.time_ns())
        tail = f', "stream": "{stream}", "time": "{now}"}}\n'
        batch: list[bytes] = []
        batch_size = 0
        for record in records:
            text = _json.encode_basestring_ascii(record.decode("utf-8", "surrogateescape"))
            line = ('{"log": ' + text + tail).encode()
            if self.max_size > 0 and self.size + batch_size + len(line) > self.max_size:
                self._write(b"".join(batch))  # the file is full: what fits, then a new file
                batch, batch_size = [], 0
                if self.size > 0:
                    self.rotate()
            batch.append(line)
            batch_size += len(line)
        self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        if data:
            write_all(self.fd, data)
            self.size += len(data)

    def rotate(self) -> None:
        os.close(self.fd)
        if self.max_files == 1:  # Docker's max-file=1: start the one file over
            self.fd = self._open(os.O_TRUNC)
        else:
            for n in range(self.max_files - 1, 0, -1):
                older = self.path if n == 1 else f"{self.path}.{n - 1}"
                try:
                    os.replace(older, f"{self.path}.{n}")
                except FileNotFoundError:
                    pass
            self.fd = self._open()
        self.size = 0

    def close(self) -> None:
        for stream in list(self.partial):
            self.flush(stream)
        os.close(self.fd)


class Output:
    """The container's stdio, decided before the fork; `relay` serves it after.

    Attached (spec "stdio"): the client's fds are the shim's 0, 1, 2. Without a tty the
    container reads the client's stdin directly (EOF as the client gives it) and writes to
    two pipes. With a tty (the client passes its pty's slave as 0, 1, 2) the container gets
    a pty of the shim's: keys go client -> shim -> our master, output master -> client + log.

    Detached with OpenStdin (Docker's -i), stdin is the FIFO STDIN_FIFO in the state dir,
    opened read-write so it never reaches EOF (as Docker keeps it open): `cat` waits for input
    instead of ending, and `docker attach` writes into the FIFO (with a tty the shim copies
    it to the pty).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        attached, tty = bool(spec.get("stdio")), bool(spec.get("tty"))
        self.client_stdin_direct = attached and not tty
        path = spec.get("log_path")
        size, files = int(spec.get("log_max_size") or 0), int(spec.get("log_max_files") or 1)
        self.log = LogWriter(str(path), size, files) if path else None
        self.sources: dict[int, tuple[str, int]] = {}  # our read end -> (stream, client fd)
        self.keys: tuple[int, int] | None = None  # tty attached: (client's fd, our master)
        self.mine: list[int] = []  # the container's ends: closed here after the fork
        fifo = None
        if not attached and spec.get("open_stdin") and spec.get("state_dir"):
            fifo = open_fifo(os.path.join(str(spec["state_dir"]), STDIN_FIFO))
        if tty:
            master, slave = os.openpty()
            self.stdio = (slave, slave, slave)
            self.mine = [slave]
            self.sources[master] = ("stdout", 1 if attached else -1)
            if attached:
                self.keys = (0, master)
                self._take_client_tty(master)
            elif fifo is not None:
                self.keys = (fifo, master)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            stdin = 0 if attached else os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            if fifo is not None:
                os.close(stdin)
                stdin = fifo
            self.stdio = (stdin, out_w, err_w)
            self.mine = [out_w, err_w] + ([] if attached else [stdin])
            self.sources[out_r] = ("stdout", 1 if attached else -1)
            self.sources[err_r] = ("stderr", 2 if attached else -1)

    def _take_client_tty(self, master: int) -> None:
        """The client's pty becomes a raw pipe (ours does the line discipline) and our
        controlling terminal, so the client's resize (TIOCSWINSZ on its master) signals us
        SIGWINCH and `copy_window_size` passes it on."""
        import termios

        try:
            mode = termios.tcgetattr(0)
            mode[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP)
            mode[0] &= ~termios.IXON
            mode[1] &= ~termios.OPOST
            mode[2] = (mode[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
            mode[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
            mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
            termios.tcsetattr(0, termios.TCSANOW, mode)
        except termios.error:  # not a terminal after all: copy bytes as they come
            return
        self.copy_window_size()
        try:
            os.setsid()
            fcntl.ioctl(0, TIOCSCTTY, 0)
        except OSError:  # no SIGWINCH then: the size stays as it was at start
            pass

    def copy_window_size(self, *_args: Any) -> None:
        if self.keys is None:
            return
        try:
            size = fcntl.ioctl(self.keys[0], TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.keys[1], TIOCSWINSZ, size)
        except OSError:
            pass

    def forked(self) -> None:
        """In the shim after the fork: drop the container's ends, so EOF comes when it ends."""
        for fd in self.mine:
            os.close(fd)
        if self.client_stdin_direct:
            null = os.open("/dev/null", os.O_RDONLY)  # the container reads the client's stdin
            os.dup2(null, 0)
            os.close(null)

    def relay(self) -> None:
        """Copy until the container's output is closed (every writer in it is gone)."""
        poller = select.poll()
        for fd in self.sources:
            poller.register(fd, select.POLLIN)
        if self.keys is not None:
            poller.register(self.keys[0], select.POLLIN)
        while self.sources:
            for fd, _event in poller.poll():
                if fd in self.sources:
                    if not self._pump_output(fd):
                        poller.unregister(fd)
                elif self.keys is not None and not self._pump_keys():
                    poller.unregister(self.keys[0])
                    self.keys = None
        self._log(self.log.close if self.log else None)

    def _pump_output(self, fd: int) -> bool:
        stream, client = self.sources[fd]
        try:
            data = os.read(fd, 65536)
        except OSError as e:  # EIO: our pty has no slave left, the container has ended
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            del self.sources[fd]
            os.close(fd)
            self._log(self.log.flush if self.log else None, stream)
            return False
        if client >= 0:
            try:
                write_all(client, data)
            except OSError:  # the client is gone: keep logging
                self.sources[fd] = (stream, -1)
        self._log(self.log.write if self.log else None, stream, data)
        return True

    def _log(self, method: Any, *args: Any) -> None:
        """A log that cannot be written (disk full...) is given up: the container goes on."""
        try:
            if method is not None:
                method(*args)
        except OSError:
            self.log = None

    def _pump_keys(self) -> bool:
        assert self.keys is not None
        try:
            data = os.read(self.keys[0], 65536)
            if data:
                write_all(self.keys[1], data)
        except OSError:
            data = b""
        return bool(data)
