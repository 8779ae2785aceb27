"""A container's files seen from the daemon: `docker cp` both ways and `docker diff`.

Paths are resolved inside the container's root (/proc/<pid>/root of a running container) the
way the container would resolve them: `..` stops at the root and an absolute symlink restarts
from the root, never from the host's /. Extraction uses tarfile's "data" filter, which also
refuses members that would land outside the destination through a symlink on the way.
(A container that swaps a directory for a symlink between the resolution and the copy races
us; the data filter still keeps extraction inside the resolved directory.)
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

MAX_LINKS = 40  # the kernel's own limit on symlinks followed in one resolution

# Go's os.FileMode type bits, which Docker's X-Docker-Container-Path-Stat carries.
GO_DIR, GO_SYMLINK, GO_NAMED_PIPE, GO_SOCKET, GO_DEVICE, GO_CHAR = (
    1 << 31, 1 << 27, 1 << 25, 1 << 24, 1 << 26, 1 << 21,
)  # fmt: skip


class PathError(Exception):
    """The path does not exist in the container, or is not what the operation needs."""


def resolve(root: Path, path: str, follow_last: bool = True) -> Path:
    """root + path, symlinks followed inside root; the result is always under root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        is_last = not parts
        if candidate.is_symlink() and (follow_last or not is_last):
            links += 1
            if links > MAX_LINKS:
                raise PathError(f"{path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def path_stat(host_path: Path, name: str) -> dict[str, object]:
    """Docker's container path stat: name, size, mode (Go bits), mtime, linkTarget."""
    try:
        st = host_path.lstat()
    except FileNotFoundError:
        raise PathError(f"Could not find the file {name} in container") from None
    mode = stat.S_IMODE(st.st_mode)
    kinds = (
        (stat.S_ISDIR, GO_DIR),
        (stat.S_ISLNK, GO_SYMLINK),
        (stat.S_ISFIFO, GO_NAMED_PIPE),
        (stat.S_ISSOCK, GO_SOCKET),
        (stat.S_ISCHR, GO_DEVICE | GO_CHAR),
        (stat.S_ISBLK, GO_DEVICE),
    )
    for test, bit in kinds:
        if test(st.st_mode):
            mode |= bit
    from datetime import UTC, datetime

    mtime = datetime.fromtimestamp(st.st_mtime, UTC).isoformat().replace("+00:00", "Z")
    return {
        "name": os.path.basename(name.rstrip("/")) or "/",
        "size": st.st_size,
        "mode": mode,
        "mtime": mtime,
        "linkTarget": os.readlink(host_path) if stat.S_ISLNK(st.st_mode) else "",
    }


def tar_of(host_path: Path, name: str) -> bytes:
    """A tar of host_path (recursively; symlinks kept as links), named by its base name."""
    arcname = os.path.basename(name.rstrip("/")) or "."
    if not host_path.exists() and not host_path.is_symlink():
        raise PathError(f"Could not find the file {name} in container")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(host_path), arcname=arcname, recursive=True)
    return buffer.getvalue()


def extract(archive: bytes, dest: Path, name: str) -> None:
    """Unpack a tar into the directory dest (resolved inside the container's root)."""
    if not dest.is_dir():
        raise PathError(f"extraction point is not a directory: {name}")
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            tar.extractall(str(dest), filter="data")
    except tarfile.FilterError as exc:
        raise PathError(f"refused archive member: {exc}") from None
    except tarfile.TarError as exc:
        raise PathError(f"not a tar archive: {exc}") from None


# -- docker diff ------------------------------------------------------------------------------
MODIFIED, ADDED, DELETED = 0, 1, 2


@dataclass(frozen=True)
class Change:
    path: str
    kind: int


def changes(upper: Path, lower: Path | None) -> list[Change]:
    """What the overlay's upper layer holds compared to the image: a whiteout (a 0/0 character
    device) is a deletion, a path the image has is a modification, others are additions."""
    out: list[Change] = []
    if not upper.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for entry in sorted([*dirnames, *filenames]):
            full = Path(dirpath, entry)
            rel = "/" + str(full.relative_to(upper))
            st = full.lstat()
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(Change(rel, DELETED))
            elif lower is not None and os.path.lexists(resolve(lower, rel, follow_last=False)):
                out.append(Change(rel, MODIFIED))
            else:
                out.append(Change(rel, ADDED))
    return sorted(out, key=lambda c: c.path)
