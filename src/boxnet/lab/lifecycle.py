"""Labs that outlive their code: close at interpreter exit or on SIGTERM/SIGHUP, and clean up
after earlier runs that died without closing (SIGKILL, OOM, a crashed CI job).

Ownership of `bxl<pid>-...` names is proven by a flock the owning process holds on
/run/boxnet-lab/bxl<pid>.lock for its whole life: the pid alone could belong to a process in
another PID namespace sharing /run/netns, which must not lose its namespaces to us.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Protocol

from boxnet.lab.proc import (
    is_lab_pid,
    kill_verified,
    lab_pids,
    lazy_umount_all,
    mounts_under,
    netns_inode,
    pid_alive,
    run,
    safe_rmtree,
    tool,
)

LOCK_DIR = Path("/run/boxnet-lab")
NETNS_DIR = Path("/run/netns")
NAME_RE = re.compile(r"bxl(\d+)[-.]")


class Closable(Protocol):
    owner_pid: int

    def close(self) -> None: ...


_open: dict[int, Closable] = {}
_guard = threading.Lock()
_lock_fd: int | None = None
_lock_pid: int | None = None


def hold_owner_lock() -> None:
    """Take (once per process) the flock that marks our bxl<pid> names as alive."""
    global _lock_fd, _lock_pid
    with _guard:
        if _lock_pid == os.getpid():
            return
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK_DIR / f"bxl{os.getpid()}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _lock_fd, _lock_pid = fd, os.getpid()


def register(lab: Closable) -> None:
    hold_owner_lock()
    with _guard:
        _open[id(lab)] = lab


def unregister(lab: Closable) -> None:
    with _guard:
        _open.pop(id(lab), None)


def close_all() -> None:
    """Close every lab this process opened (a forked child must not close its parent's labs)."""
    with _guard:
        labs = [lab for lab in _open.values() if lab.owner_pid == os.getpid()]
    for lab in labs:
        try:
            lab.close()
        except Exception as exc:
            print(f"boxnet.lab: cleanup at exit: {exc}", file=sys.stderr)


def _release_owner_lock() -> None:
    """At exit, once no lab of ours is open, drop the lock file (no litter in /run)."""
    global _lock_fd, _lock_pid
    with _guard:
        if _lock_pid != os.getpid() or _lock_fd is None or _open:
            return
        with contextlib.suppress(OSError):
            (LOCK_DIR / f"bxl{os.getpid()}.lock").unlink()
        os.close(_lock_fd)
        _lock_fd = _lock_pid = None


# atexit runs in reverse order: close the labs first, then release the lock.
atexit.register(_release_owner_lock)
atexit.register(close_all)


def install_signal_cleanup() -> None:
    """Close labs on SIGTERM/SIGHUP, then die of the same signal (atexit does not run then).

    Only from the main thread (Python's rule); handlers someone else installed are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(sig: int, _frame: FrameType | None) -> None:
        close_all()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, handler)


def _owner_dead(pid: int) -> bool:
    if pid == os.getpid() or pid_alive(pid):
        return False
    lock = LOCK_DIR / f"bxl{pid}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live process elsewhere (another PID namespace) still owns it
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        lock.unlink()
    return True


def cleanup_stale_labs() -> list[str]:
    """Remove what labs of dead processes left: their processes, mounts, temp dirs, namespaces.

    Returns the names of the namespaces and dirs removed.
    """
    removed: list[str] = []
    dead: dict[int, bool] = {}

    def is_dead(name: str) -> bool:
        match = NAME_RE.match(name)
        if not match:
            return False
        pid = int(match.group(1))
        if pid not in dead:
            dead[pid] = _owner_dead(pid)
        return dead[pid]

    for lock in LOCK_DIR.glob("bxl*.lock"):  # a killed owner's lock file, even without labs
        is_dead(lock.name)
    namespaces = sorted(p.name for p in NETNS_DIR.glob("bxl*") if is_dead(p.name))
    tmp = Path(tempfile.gettempdir())
    dirs = sorted(p for p in tmp.glob("bxl*") if p.is_dir() and is_dead(p.name))
    inodes: set[int] = set()
    for name in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(netns_inode(NETNS_DIR / name))
    for d in dirs:
        for point, fstype in mounts_under(d):
            if fstype == "nsfs":
                with contextlib.suppress(OSError):
                    inodes.add(netns_inode(point))
    marks = [str(d) for d in dirs]
    kill_verified(lab_pids(inodes, marks), lambda pid: is_lab_pid(pid, inodes, marks))
    for d in dirs:
        lazy_umount_all(d)
        if not safe_rmtree(d):
            removed.append(str(d))
    for name in namespaces:
        if run([tool("ip"), "netns", "del", name], check=False).returncode == 0:
            removed.append(name)
    return removed
