"""The shim's helpers for `run` flags about the root and the process: bind mounts (`-v`,
`--mount`), a read-only root (`--read-only`), the domain name and the user (`-u`).

Loaded by shim.py from its bytecode (see `load_sibling`), so, like it, stand-alone and stdlib
only, with no imports that cost start-up time (`re`, `json`, `typing`...). Everything here runs
in the container's PID 1 between fork and exec; errors are OSError (setup) or UserError.
"""

from __future__ import annotations

import os

MYPY = False
if MYPY:
    from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
# --tmpfs flags as mount(2) bits: (set, clear); other options go to tmpfs as data.
TMPFS_FLAGS = {"ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY), "noexec": (MS_NOEXEC, 0)}
TMPFS_FLAGS.update({"exec": (0, MS_NOEXEC), "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID)})
TMPFS_FLAGS.update({"nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV)})


class UserError(Exception):
    """`-u` names a user or group the container's files do not know (Docker's words)."""


def bind_mounts(root: str, spec: dict[str, Any], writable: bool, shim: dict[str, Any]) -> None:
    """Mount each [source, target, read_only] of spec["binds"] inside root.

    The source is a host path, read before pivot_root (we still see the host's tree); the
    target is resolved inside the root (symlinks stay in it) and created when missing, as a
    directory or an empty file to match the source, as Docker does.
    """
    for source, target, read_only in spec.get("binds") or ():
        if not os.path.exists(source):
            os.makedirs(source, 0o755, exist_ok=True)  # Docker's -v creates a missing host dir
        path = shim["mount_point"](root, target, writable, is_dir=os.path.isdir(source))
        if path is None:
            raise OSError(2, f"cannot create mount point {target}: the root is read-only")
        shim["mount"](source, path, None, MS_BIND | MS_REC)
        if read_only:
            shim["make_readonly"](path, recursive=True)
    tmpfs_mounts(root, spec, writable, shim)


def tmpfs_mounts(root: str, spec: dict[str, Any], writable: bool, shim: dict[str, Any]) -> None:
    """--tmpfs PATH[:OPTIONS]: a tmpfs, noexec/nosuid/nodev by default as Docker's."""
    for target, options in (spec.get("tmpfs") or {}).items():
        flags, data = MS_NOEXEC | MS_NOSUID | MS_NODEV, []
        for option in filter(None, str(options).split(",")):
            if option in TMPFS_FLAGS:
                flags = (flags | TMPFS_FLAGS[option][0]) & ~TMPFS_FLAGS[option][1]
            else:
                data.append(option)
        path = shim["mount_point"](root, target, writable)
        if path is None:
            raise OSError(2, f"cannot create mount point {target}: the root is read-only")
        shim["mount"]("tmpfs", path, "tmpfs", flags, ",".join(data) or None)


def make_root_readonly(root: str, spec: dict[str, Any], shim: dict[str, Any]) -> None:
    """--read-only: the root's own mount read-only; /proc, /dev, /tmp, the /etc files and bind
    mounts are mounts of their own and keep their modes. The working directory is made first
    (Docker creates it at create time, so it exists even in a read-only root)."""
    workdir = spec.get("workdir")
    if workdir and spec.get("_writable"):
        try:
            os.makedirs(shim["in_root"](root, workdir), 0o755, exist_ok=True)
        except OSError:  # e.g. a file in the way: chdir says so, in Docker's words
            pass
    if spec.get("read_only"):
        shim["mount"](None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def set_names(spec: dict[str, Any], libc: Any) -> str:
    """The hostname (and domain name) of a new UTS namespace; with --uts host, the host's."""
    if spec.get("uts_host"):
        return os.uname().nodename
    hostname = str(spec.get("hostname") or spec["container_id"][:12])
    if libc.sethostname(hostname.encode(), len(hostname.encode())) < 0:
        raise OSError(1, f"sethostname {hostname}")
    set_domainname(spec, libc)
    return hostname


def cgroups_of(pid: int) -> list[str]:
    """The boxnet cgroup directories a container's process is in (an exec joins them)."""
    found = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3 and parts[2].startswith("/boxnet/"):
                path = f"/sys/fs/cgroup/{parts[1]}{parts[2]}"
                if os.path.isdir(path):
                    found.append(path)
    return found


def join_cgroups(spec: dict[str, Any]) -> None:
    for cgroup in spec.get("cgroups") or ():
        with open(cgroup + "/cgroup.procs", "w") as f:
            f.write("0")  # cgroup v1: "0" is the writer itself (its PID is 1 in here)


def set_domainname(spec: dict[str, Any], libc: Any) -> None:
    name = str(spec.get("domainname") or "")
    if name and libc.setdomainname(name.encode(), len(name.encode())) < 0:
        raise OSError(1, f"setdomainname {name}")


def _entries(path: str) -> list[list[str]]:
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    except FileNotFoundError:
        return []


def resolve_user(text: str) -> tuple[int, int, list[int], str]:
    """UID[:GID] or NAME[:GROUP] -> (uid, gid, supplementary gids, home), read in the
    container's /etc/passwd and /etc/group (we are past pivot_root), with runc's rules: a
    numeric uid need not exist (gid 0, home /); a name must."""
    user, _, group = text.partition(":")
    uid, gid, home, name = -1, 0, "/", ""
    for fields in _entries("/etc/passwd"):
        if len(fields) < 6:
            continue
        if fields[0] == user or (user.isdigit() and fields[2] == user):
            name, uid, gid, home = fields[0], int(fields[2]), int(fields[3]), fields[5] or "/"
            break
    if uid < 0:
        if not user.isdigit():
            raise UserError(f"unable to find user {user}: no matching entries in passwd file")
        uid = int(user)
    groups = _entries("/etc/group")
    if group:
        found = [int(f[2]) for f in groups if len(f) >= 3 and group in (f[0], f[2])]
        if found:
            gid = found[0]
        elif group.isdigit():
            gid = int(group)
        else:
            raise UserError(f"unable to find group {group}: no matching entries in group file")
    extra = []
    if name:
        for f in groups:
            if len(f) >= 4 and name in f[3].split(",") and f[2].isdigit():
                extra.append(int(f[2]))
    return uid, gid, extra, home


def _group_id(group: str) -> int:
    """A --group-add entry: a number, or a name in the container's /etc/group."""
    if group.isdigit():
        return int(group)
    for f in _entries("/etc/group"):
        if len(f) >= 3 and f[0] == group and f[2].isdigit():
            return int(f[2])
    raise UserError(f"Unable to find group {group}: no matching entries in group file")


def switch_user(spec: dict[str, Any], env: dict[str, str]) -> None:
    """Become spec["user"] (if any): groups, then gid, then uid (the order that still has the
    privilege for each step). HOME comes from the passwd entry unless the command sets it."""
    text = spec.get("user")
    added = [_group_id(str(g)) for g in spec.get("group_add") or ()]  # Docker's --group-add
    if not text:
        if added:
            os.setgroups(sorted({os.getgid(), *added}))
        return
    uid, gid, extra, home = resolve_user(str(text))
    os.setgroups(sorted({gid, *extra, *added}))
    os.setgid(gid)
    os.setuid(uid)
    env.setdefault("HOME", home)
