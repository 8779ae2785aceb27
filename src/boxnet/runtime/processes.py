"""A container's processes as the daemon watches them: pidfds, the shim's state files (its PID,
the exit status it wrote) and signals. Split from launcher.py, which starts them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

EXIT_FILE = "exit.json"
PID_FILE = "pid"


class PidFd:
    """An owned pidfd, readable (select/poll) once its process has ended.

    Closed when garbage-collected unless `detach`ed, so a caller that ignores it leaks nothing.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("pidfd is closed")
        return self._fd

    def detach(self) -> int:
        """Take ownership of the raw fd."""
        fd, self._fd = self.fileno(), -1
        return fd

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    finished_at: str
    oom_killed: bool = False
    error: str = ""


def read_exit(state_dir: Path | str) -> ExitStatus | None:
    """The status the shim wrote when the container ended; None while it runs (or if lost)."""
    try:
        data = json.loads((Path(state_dir) / EXIT_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return ExitStatus(
        exit_code=int(data["ExitCode"]),
        finished_at=str(data.get("FinishedAt", "")),
        oom_killed=bool(data.get("OOMKilled", False)),
        error=str(data.get("Error", "")),
    )


def read_pid(state_dir: Path | str) -> int | None:
    try:
        return int((Path(state_dir) / PID_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")


def send_signal(pid: int, sig: int, pidfd: int | PidFd | None = None) -> bool:
    """Signal a process (race-free through its pidfd if given). False if it is already gone."""
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd if isinstance(pidfd, int) else pidfd.fileno(), sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def open_pidfd(pid: int) -> int | None:
    """A pidfd (readable once the process exits), or None if the process is gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
