"""Network namespaces as files, without forking.

`unshare(CLONE_NEWNET)` and `setns()` change only the calling *thread*, so a short-lived thread can
create a namespace (and bind-mount it to a file) or open a netlink socket inside one, and then
exit: the daemon's own threads never change namespace, and no process is forked per step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from boxnet.errors import KernelError

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2
NETLINK_ROUTE = 0

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a throwaway thread (whose namespace changes die with it)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="boxnet-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def create_netns(path: Path) -> None:
    """Create a new network namespace bind-mounted at `path` (with lo up)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError as exc:
        raise KernelError(f"create network namespace {path}: file exists") from exc
    os.close(fd)

    def work() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        tid = threading.get_native_id()
        _check(
            _libc.mount(f"/proc/self/task/{tid}/ns/net".encode(), bytes(path), None, MS_BIND, None),
            f"bind-mount netns at {path}",
        )

    try:
        _in_thread(work)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KernelError(f"create network namespace {path}: {exc.strerror}") from exc


def delete_netns(path: Path) -> None:
    """Unmount and remove a namespace file; already gone is success."""
    if _libc.umount2(bytes(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise KernelError(f"unmount netns {path}: {os.strerror(err)}")
    path.unlink(missing_ok=True)


def netlink_socket_in(path: str | Path) -> socket.socket:
    """A NETLINK_ROUTE socket that lives in the namespace at `path` (a file or /proc/PID/ns/net)."""

    def work() -> socket.socket:
        fd = os.open(path, os.O_RDONLY)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns({path})")
        finally:
            os.close(fd)
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)

    try:
        return _in_thread(work)
    except OSError as exc:
        raise KernelError(f"enter network namespace {path}: {exc.strerror or exc}") from exc


def socket_in(path: str | Path, family: int, type: int) -> socket.socket:
    """A socket of (family, type) that lives in the namespace at `path`: a socket stays in the
    namespace it was created in, whichever thread later binds or uses it."""

    def work() -> socket.socket:
        fd = os.open(path, os.O_RDONLY)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns({path})")
        finally:
            os.close(fd)
        return socket.socket(family, type)

    try:
        return _in_thread(work)
    except OSError as exc:
        raise KernelError(f"enter network namespace {path}: {exc.strerror or exc}") from exc
