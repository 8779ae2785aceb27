"""The shim's file-system side: the container's root, mounted in its PID 1 (a fresh mount
namespace), and the mount(2) helpers the shim and shimroot.py use.

Loaded by shim.py from its bytecode (see `load_sibling`), so, like it, stand-alone and stdlib
only, with no imports that cost start-up time. A deferred start (launcher.launch) runs
prepare_root while the daemon still builds the network, and finish_root once it joined the
container's network namespace (sysfs shows the mounter's namespace) and has its /etc files.
"""

from __future__ import annotations

import ctypes
import errno
import os

MYPY = False
if MYPY:  # typing imports `re`; only the type checker needs it
    from typing import Any

    from boxnet.runtime import shimroot
else:
    shimroot: Any = None  # set by shim.py, which loads both (no sys.path inside the shim)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC = 4096, 16384
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine)
SYS_MOUNT_SETATTR = 442  # same number on every architecture (added after the syscall unification)
AT_RECURSIVE, MOUNT_ATTR_RDONLY = 0x8000, 1
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err).lower()}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(src: str | None, tgt: str, fs: str | None, flags: int, data: str | None = None) -> None:
    ret = _libc.mount(_b(src), _b(tgt), _b(fs), ctypes.c_ulong(flags), _b(data))
    _check(ret, f"mount {fs or src} on {tgt}")


def make_readonly(path: str, recursive: bool) -> None:
    """Read-only mount (with every submount if recursive and the kernel has mount_setattr)."""
    if recursive:
        attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
        ret = _libc.syscall(SYS_MOUNT_SETATTR, -100, _b(path), AT_RECURSIVE, attr, 32)
        if ret == 0:
            return
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


# --- building the container's root (runs in PID 1, in its fresh mount namespace) --------------


def in_root(root: str, path: str) -> str:
    """`path` inside `root`, following symlinks as the container would (never out of root)."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        try:
            link = os.readlink("/".join([root, *done, part]))
        except OSError:  # not a symlink, or missing: keep the name as is
            done.append(part)
            continue
        hops += 1
        if hops > 40:
            raise OSError(errno.ELOOP, f"too many symlinks resolving {path}")
        if link.startswith("/"):
            done = []
        todo[:0] = [p for p in link.split("/") if p not in ("", ".")]
    return "/".join([root, *done])


def mount_point(root: str, name: str, writable: bool, is_dir: bool = True) -> str | None:
    """A mount target inside root, created when the root is writable; None if impossible."""
    path = in_root(root, name)
    if not os.path.lexists(path) and writable:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if is_dir:
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    return path if os.path.lexists(path) else None


def drop_nsfs(root: str) -> None:
    """Unmount namespace files (/run/netns/*) copied by the recursive bind of the host's /.

    Left there, the container's mount namespace would pin other containers' network namespaces.
    """
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    prefix = root + "/"
    for line in reversed(lines):
        fields = line.split(" ")
        sep = fields.index("-")
        parts = fields[4].split("\\")  # octal escapes: \040 for a space, \134 for "\\"...
        target = parts[0] + "".join(chr(int(p[:3], 8)) + p[3:] for p in parts[1:])
        if fields[sep + 1] == "nsfs" and target.startswith(prefix):
            _libc.umount2(_b(target), MNT_DETACH)


def build_root(spec: dict[str, Any]) -> str:
    """The container's root, whole (no deferred start)."""
    root = prepare_root(spec)
    finish_root(root, spec)
    return root


def prepare_root(spec: dict[str, Any]) -> str:
    """Every mount that needs neither the network namespace nor the /etc files: a deferred
    start does this while the daemon still builds the network (see wait_for_go)."""
    root = os.path.realpath(os.path.join(spec["state_dir"], "rootfs"))  # as mountinfo shows it
    rootfs, upper, work = spec.get("rootfs"), spec.get("upper_dir"), spec.get("work_dir")
    writable = False
    if rootfs is None:  # the "host" image: the host's file system, read-only
        mount("/", root, None, MS_BIND | MS_REC)
        drop_nsfs(root)
        make_readonly(root, recursive=True)
    else:
        if upper and work:
            os.makedirs(upper, exist_ok=True)
            os.makedirs(work, exist_ok=True)
            opts = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
            try:
                mount("overlay", root, "overlay", 0, opts)
                writable = True
            except OSError:  # e.g. upper dir on a file system overlayfs refuses: run read-only
                pass
        if not writable:
            mount(rootfs, root, None, MS_BIND | MS_REC)
            make_readonly(root, recursive=False)
    spec["_writable"] = writable
    nosuid_nodev = MS_NOSUID | MS_NODEV
    for name, fstype, flags, data in (
        ("proc", "proc", nosuid_nodev | MS_NOEXEC, None),
        ("dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k"),
        ("tmp", "tmpfs", nosuid_nodev, "mode=1777"),
    ):
        mount_fs(root, name, fstype, flags, data, writable)
    dev = in_root(root, "dev")
    for node in DEV_NODES:
        os.close(os.open(f"{dev}/{node}", os.O_CREAT | os.O_WRONLY, 0o666))
        mount(f"/dev/{node}", f"{dev}/{node}", None, MS_BIND)
    os.mkdir(f"{dev}/pts", 0o755)
    os.mkdir(f"{dev}/shm", 0o1777)
    pts_opts = "newinstance,ptmxmode=0666,mode=0620,gid=5"
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts)
    mount("shm", f"{dev}/shm", "tmpfs", nosuid_nodev | MS_NOEXEC, "mode=1777")
    links = {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0"}
    links.update({"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"})
    for name, link in links.items():
        os.symlink(link, f"{dev}/{name}")
    shimroot.bind_mounts(root, spec, writable, globals())  # -v, --tmpfs: with our functions
    return root


def finish_root(root: str, spec: dict[str, Any]) -> None:
    """In the container's network namespace: sysfs (it shows the mounter's namespace), the
    /etc files, and the root made read-only last."""
    writable = bool(spec["_writable"])
    sysfs_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY
    try:
        mount_fs(root, "sys", "sysfs", sysfs_flags, None, writable)
    except OSError as e:  # the host image in the host's netns: /sys already is this sysfs
        if e.errno != errno.EBUSY or spec.get("rootfs") is not None:
            raise
    for target, source in (spec.get("etc_files") or {}).items():
        path = mount_point(root, target, writable, is_dir=False)
        if path is not None:  # a read-only image without the file keeps its own (or none)
            mount(source, path, None, MS_BIND)
    shimroot.make_root_readonly(root, spec, globals())


def mount_fs(
    root: str, name: str, fstype: str, flags: int, data: str | None, writable: bool
) -> None:
    target = mount_point(root, name, writable)
    if target is None:
        raise OSError(errno.ENOENT, f"image has no /{name} to mount {fstype} on")
    mount(fstype, target, fstype, flags, data)


def enter_root(root: str) -> None:
    """pivot_root so the container's mount namespace holds no host mounts; chroot as fallback."""
    os.chdir(root)
    if SYS_PIVOT_ROOT is not None and _libc.syscall(SYS_PIVOT_ROOT, b".", b".") == 0:
        _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    else:
        os.chroot(".")
    os.chdir("/")
