"""How a container's shim process comes to be: forked by the zygote (zygote.py), one idle
interpreter that has shim.py loaded (~1 ms), or, when the zygote cannot serve, spawned as a fresh
`python -I -S shim.py SPEC` (~10 ms). The protocol with the shim itself is in launcher.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import py_compile
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

SHIM_PATH = Path(__file__).with_name("shim.py")
ZYGOTE_PATH = Path(__file__).with_name("zygote.py")
SHIMIO_PATH = Path(__file__).with_name("shimio.py")  # loaded by the shim, from its bytecode
SHIMROOT_PATH = Path(__file__).with_name("shimroot.py")  # the same
SHIMFS_PATH = Path(__file__).with_name("shimfs.py")  # the same
READY_TIMEOUT = 10.0


def compiled(source: Path) -> str:
    """A stand-alone script as bytecode when possible: `python shim.py` recompiles it at every
    start (~3 ms of a ~12 ms start). Recompiled when the source is newer; else the source."""
    pyc = Path(importlib.util.cache_from_source(str(source)))
    try:
        if not pyc.exists() or pyc.stat().st_mtime < source.stat().st_mtime:
            py_compile.compile(str(source), cfile=str(pyc), doraise=True)  # atomic write
        return str(pyc)
    except (OSError, py_compile.PyCompileError):
        return str(source)


def shim_program() -> str:
    compiled(SHIMIO_PATH)  # the shim loads them from their bytecode when fresh
    compiled(SHIMROOT_PATH)
    compiled(SHIMFS_PATH)
    return compiled(SHIM_PATH)


def spawn(
    spec_path: Path, child_sock: socket.socket, stdio: Any, stderr: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", shim_program(), str(spec_path)],
        stdin=stdio[0],
        stdout=stdio[1],
        stderr=stderr,
        pass_fds=(child_sock.fileno(),),
        close_fds=True,
        start_new_session=True,
        cwd="/",
    )


class Zygote:
    """The daemon's end of the shim zygote (zygote.py): one idle interpreter that forks
    a shim per start (~1 ms) instead of a fresh `python shim.py` each time (~10 ms). Started on
    first use; when it is gone or misbehaves, `fork` returns None and the caller spawns a plain
    shim, so a broken zygote costs speed, never a start."""

    def __init__(self) -> None:
        # The daemon's directory of namespace files: the zygote's shims leave its mounts out of
        # their mount namespaces (zygote.leave_out_netns). Set by boxnetd before its first start.
        self.netns_dir = ""
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _ensure(self, log_path: Path) -> socket.socket:
        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        compiled(SHIMIO_PATH)
        compiled(SHIMROOT_PATH)
        compiled(SHIMFS_PATH)
        with theirs, open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                # The log path is only a label: the shims the zygote forks share its command
                # line, and tools (and the test labs' clean-up) find them by the exec root in it.
                [
                    sys.executable,
                    "-I",
                    "-S",
                    compiled(ZYGOTE_PATH),
                    str(theirs.fileno()),
                    str(SHIM_PATH),  # loads shimio from its bytecode, compiled here
                    str(log_path),
                    *([self.netns_dir] if self.netns_dir else []),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
                start_new_session=True,
                cwd="/",
            )
        ours.settimeout(READY_TIMEOUT)
        self._sock = ours
        return ours

    def fork(self, spec_path: Path, ready: socket.socket, stdio: tuple[int, int, int],
             log_path: Path) -> int | None:  # fmt: skip
        """The forked shim's PID, or None when the zygote cannot serve (spawn a plain shim)."""
        with self._lock:
            try:
                sock = self._ensure(log_path)
                socket.send_fds(sock, [str(spec_path).encode()], [ready.fileno(), *stdio])
                pid = int(sock.recv(32) or b"0")
            except (OSError, ValueError):
                self.close()
                return None
            return pid or None

    def close(self) -> None:
        """Hang up: the zygote sees EOF and exits (the shims it forked live on)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


ZYGOTE = Zygote()


def fork_or_spawn(
    spec_path: Path, ready: socket.socket, stdio: Any, stderr: Any, log_dir: Path
) -> tuple[int, subprocess.Popen[bytes] | None]:
    """(shim PID, the Popen to wait for when it was spawned rather than forked)."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        fds = [null if x == subprocess.DEVNULL else x for x in (*stdio[:2], stderr)]
        fds = [x.fileno() if hasattr(x, "fileno") else int(x) for x in fds]
        pid = ZYGOTE.fork(spec_path, ready, (fds[0], fds[1], fds[2]), log_dir / "zygote.log")
    finally:
        os.close(null)
    if pid is not None:
        return pid, None
    proc = spawn(spec_path, ready, stdio, stderr)
    return proc.pid, proc
