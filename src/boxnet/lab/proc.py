"""Process, mount and file helpers for labs: running commands, finding and killing our leftovers.

Everything here is deliberately conservative: a process is only killed when it can be proven to
belong to a lab (it lives in a lab's network namespace, or its command line names a lab's unique
temp dir), and a directory is only deleted when nothing is mounted below it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

MNT_DETACH = 2


class LabError(RuntimeError):
    """A lab could not be built or torn down."""


class LabCommandError(subprocess.CalledProcessError):
    """CalledProcessError whose message includes the command's output (the stock one hides it)."""

    def __str__(self) -> str:
        text = super().__str__()
        for label, data in (("stdout", self.stdout), ("stderr", self.stderr)):
            if data:
                shown = data if isinstance(data, str) else data.decode(errors="replace")
                text += f"\n{label}: {shown.strip()[-2000:]}"
        return text


def tool(name: str) -> str:
    """Absolute path of a system tool, so a test's PATH tweaks cannot swap it for something else."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise LabError(f"{name!r} is not installed; labs need iproute2 and util-linux")
    return found


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capture text output, raise LabCommandError (with the output) on failure."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if check and proc.returncode != 0:
        raise LabCommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


def tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


# --- processes -----------------------------------------------------------------------------


def netns_inode(path: str | Path) -> int:
    """Inode of a network namespace file (/run/netns/x, /proc/<pid>/ns/net or an nsfs mount)."""
    return os.stat(path).st_ino


def _proc_netns(pid: int) -> int | None:
    try:
        link = os.readlink(f"/proc/{pid}/ns/net")  # "net:[4026531840]"
    except OSError:
        return None
    match = re.fullmatch(r"net:\[(\d+)\]", link)
    return int(match.group(1)) if match else None


def _proc_cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name may contain spaces and parentheses: parse after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def protected_pids() -> set[int]:
    """Ourselves and our ancestors: never killed, whatever their command line says."""
    pids: set[int] = set()
    pid = os.getpid()
    for _ in range(64):  # bounded walk up the tree
        if pid <= 0 or pid in pids:
            break
        pids.add(pid)
        pid = _ppid(pid)
    return pids | {1}


def protected_netns() -> set[int]:
    """Namespaces that are never ours to clean: the one we run in and init's."""
    inodes = {netns_inode("/proc/self/ns/net")}
    with contextlib.suppress(OSError):
        inodes.add(netns_inode("/proc/1/ns/net"))
    return inodes


def is_lab_pid(pid: int, netns_inodes: set[int], cmdline_marks: Sequence[str]) -> bool:
    """Does pid live in one of the given namespaces, or does its cmdline name one of the marks?

    The caller's own namespace and init's never count, nor do we and our ancestors.
    """
    if pid in protected_pids():
        return False
    if _proc_netns(pid) in netns_inodes - protected_netns():
        return True
    cmdline = _proc_cmdline(pid)
    return any(m and m in cmdline for m in cmdline_marks)


def lab_pids(netns_inodes: Iterable[int], cmdline_marks: Iterable[str]) -> list[int]:
    """PIDs living in one of the given namespaces or whose cmdline names one of the marks."""
    inodes = set(netns_inodes) - protected_netns()
    marks = [m for m in cmdline_marks if m]
    skip = protected_pids()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        pid = int(entry)
        if _proc_netns(pid) in inodes or any(m in _proc_cmdline(pid) for m in marks):
            found.append(pid)
    return found


def kill_verified(
    pids: Iterable[int], still_ours: Callable[[int], bool], timeout: float = 5.0
) -> list[str]:
    """SIGKILL each pid through a pidfd, after re-checking it is still ours (no pid-reuse race).

    Waits (bounded) until each has exited. Returns error messages rather than raising, since
    cleanup must go on.
    """
    errors: list[str] = []
    fds: list[tuple[int, int]] = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        except OSError as exc:
            errors.append(f"pidfd_open({pid}): {exc}")
            continue
        # The pidfd now pins this exact process: if it is still ours, the kill cannot hit another.
        if not still_ours(pid):
            os.close(fd)
            continue
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            fds.append((pid, fd))
        except ProcessLookupError:
            os.close(fd)
        except OSError as exc:
            os.close(fd)
            errors.append(f"kill {pid}: {exc}")
    deadline = time.monotonic() + timeout
    for pid, fd in fds:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        # A pidfd becomes readable when the process has exited (even if not yet reaped).
        if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            errors.append(f"process {pid} still alive {timeout:.0f}s after SIGKILL")
        os.close(fd)
    return errors


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # zombies are dead, they only wait for their parent


# --- mounts and files -----------------------------------------------------------------------


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: str | Path) -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount at or below root in our mount namespace."""
    prefix = str(root).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = _unescape(fields[4])
        fstype = fields[fields.index("-") + 1]
        if point == prefix or point.startswith(prefix + "/"):
            found.append((point, fstype))
    return found


def lazy_umount_all(root: str | Path) -> list[str]:
    """umount2(MNT_DETACH) every mount below root, deepest first; stacked mounts need rounds."""
    libc = ctypes.CDLL(None, use_errno=True)
    errors: list[str] = []
    for _ in range(20):
        points = sorted(
            {p for p, _ in mounts_under(root)}, key=lambda p: p.count("/"), reverse=True
        )
        if not points:
            return errors
        progress = False
        for point in points:
            if libc.umount2(point.encode(), MNT_DETACH) == 0:
                progress = True
            else:
                err = ctypes.get_errno()
                if err not in (errno.EINVAL, errno.ENOENT):
                    errors.append(f"umount {point}: {os.strerror(err)}")
        if not progress:
            break
    left = mounts_under(root)
    if left:
        errors.append(f"still mounted under {root}: {[p for p, _ in left]}")
    return errors


def safe_rmtree(root: Path) -> list[str]:
    """Delete root, but never through a mount point (a bind mount of / would be a catastrophe)."""
    if not root.exists():
        return []
    if mounts_under(root):
        return [f"not removing {root}: something is still mounted below it"]
    dev = root.lstat().st_dev
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            sub = Path(dirpath, name)
            if not sub.is_symlink() and sub.lstat().st_dev != dev:
                return [f"not removing {root}: {sub} is on another file system"]
    errors: list[str] = []
    shutil.rmtree(root, onerror=lambda _f, path, exc: errors.append(f"rm {path}: {exc[1]}"))
    return errors
