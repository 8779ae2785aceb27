"""Record every program a command and its descendants execute (fanotify FAN_OPEN_EXEC_PERM).

Used by `python -m boxnet.lab.programs -- CMD ...` (what `make test` runs) to see which programs
the suite really ran: on the host, inside lab namespaces, in `host`-image containers, by
boxnetd itself. It watches the root file system as a whole, so it sees what no static scan of
the sources can (argv built at run time, programs run by programs).

Whose exec it was: the command runs with a token in its environment; an exec counts when the
exec'ing process, or one of its ancestors, is the command or carries the token (boxnetd and
its shims inherit it; containers get their own environment, but their processes descend from a
shim). Other work on the machine (a developer's shell, another test run) is left out. That needs
the process alive when the event is read, hence *permission* events: the kernel holds the exec
until the watcher answers (always "allow", a few microseconds; if the watcher dies, the kernel
allows everything pending).

Needs CAP_SYS_ADMIN (root); `available()` says why not otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from dataclasses import dataclass

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_CONTENT = 0x4
FAN_MARK_ADD = 0x1
FAN_MARK_FILESYSTEM = 0x100
FAN_OPEN_EXEC_PERM = 0x40000
FAN_Q_OVERFLOW = 0x4000
FAN_ALLOW = 0x1
AT_FDCWD = -100
# struct fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid
EVENT = struct.Struct("=IBBHQii")
RESPONSE = struct.Struct("=iI")  # struct fanotify_response: fd, response
TOKEN_VAR = "BOXNET_EXECWATCH"

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_mark.argtypes = [
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_uint64,
    ctypes.c_int,
    ctypes.c_char_p,
]


@dataclass(frozen=True)
class Exec:
    """One program executed: its path (as the kernel resolved it) and a command line, if seen."""

    path: str
    cmdline: str


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    # The command name may contain spaces and parentheses: parse after the last ')'.
    return int(stat.rsplit(b")", 1)[1].split()[1]) if stat else 0


class ExecWatch:
    """Collects Exec records in a thread from start() to stop(); `overflowed`: events were lost."""

    def __init__(self, mount: str = "/") -> None:
        self.mount = mount
        self.seen: dict[str, Exec] = {}
        self.overflowed = False
        self.token = os.urandom(8).hex()
        # Our own children, and the watched command(s) once started (their pids are added).
        self.root_pids: set[int] = {os.getpid()}
        self._marker = f"{TOKEN_VAR}={self.token}".encode()
        self._fd = -1
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="execwatch", daemon=True)

    def start(self) -> ExecWatch:
        fd = _libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"fanotify_init: {os.strerror(err)}")
        flags = FAN_MARK_ADD | FAN_MARK_FILESYSTEM
        if _libc.fanotify_mark(fd, flags, FAN_OPEN_EXEC_PERM, AT_FDCWD, self.mount.encode()) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"fanotify_mark {self.mount}: {os.strerror(err)}")
        self._fd = fd
        self._thread.start()
        return self

    def environ(self) -> dict[str, str]:
        """The environment to run the watched command with (ours plus the token)."""
        return {**os.environ, TOKEN_VAR: self.token}

    def stop(self) -> dict[str, Exec]:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=10)
        self._drain()  # what arrived between the last poll and the stop
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)
        return self.seen

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._stop_r in ready:
                return
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, EVENT.size * 512)
            except BlockingIOError:
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + EVENT.size <= len(data):
            length, _vers, _res, _mlen, mask, fd, pid = EVENT.unpack_from(data, offset)
            offset += length or EVENT.size
            if mask & FAN_Q_OVERFLOW:
                self.overflowed = True
            if fd < 0:
                continue
            try:
                self._record(fd, pid)
            finally:
                os.write(self._fd, RESPONSE.pack(fd, FAN_ALLOW))
                os.close(fd)

    def _record(self, fd: int, pid: int) -> None:
        if not self._ours(pid):
            return
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
            here, there = os.fstat(fd), os.stat(path)
        except OSError:
            return  # not reachable by that name from here (a container image's own file)
        if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino) or path in self.seen:
            return  # a file of an image, named as inside the container's root; or known
        cmdline = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").strip()
        self.seen[path] = Exec(path, cmdline.decode(errors="replace"))

    def _ours(self, pid: int) -> bool:
        for _ in range(64):  # bounded walk up the process tree
            if pid <= 1:
                return False
            if pid in self.root_pids or self._marker in _read(f"/proc/{pid}/environ"):
                return True
            pid = _ppid(pid)
        return False


def available() -> str | None:
    """Why an ExecWatch cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (fanotify on a whole file system)"
    return None
