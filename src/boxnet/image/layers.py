"""Layer tarballs: applied one after the other onto one root directory, and made from one.

Applying follows the OCI layer rules: `.wh.NAME` removes NAME of the layers below,
`.wh..wh..opq` empties its directory of what the layers below put there, an entry replaces
whatever was at its path (never writing through a link). Members that would leave the root
(absolute paths, `..`, links on the way, hard links to outside) are refused. Device nodes and
fifos are skipped: the shim gives every container its own /dev.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from boxnet.errors import InvalidArgument

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def unsafe_member_reason(member: tarfile.TarInfo) -> str | None:
    """Why a tar member must not be extracted as is, or None when it is safe."""
    name = PurePosixPath(member.name)
    if name.is_absolute():
        return "absolute path"
    if ".." in name.parts:
        return "'..' in path"
    if member.islnk():
        target = PurePosixPath(member.linkname)
        if target.is_absolute() or ".." in target.parts:
            return "hard link out of the image"
    return None


def _no_symlink_on_the_way(dest: Path, rel: PurePosixPath) -> None:
    """Refuse a member whose parent directories inside dest include a symlink: extracting would
    follow it and write outside the image (e.g. `etc -> /` then `etc/passwd`)."""
    current = dest
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise InvalidArgument(f"unsafe tar member {str(rel)!r}: its parent {part!r} is a link")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def apply_layer(tar: tarfile.TarFile, root: Path) -> None:
    """Extract one layer onto root (which holds the layers below), whiteouts applied."""
    this_layer: set[PurePosixPath] = set()
    for member in tar:
        reason = unsafe_member_reason(member)
        if reason:
            raise InvalidArgument(f"unsafe tar member {member.name!r}: {reason}")
        rel = PurePosixPath(os.path.normpath(member.name))
        if str(rel) == "." or member.isdev():
            continue
        _no_symlink_on_the_way(root, rel)
        base = rel.name
        if base == OPAQUE:
            directory = root / rel.parent
            if directory.is_dir() and not directory.is_symlink():
                for child in list(directory.iterdir()):
                    if rel.parent / child.name not in this_layer:
                        _remove(child)
            continue
        if base.startswith(WHITEOUT):
            victim = base[len(WHITEOUT) :]
            if victim in ("", ".", ".."):
                raise InvalidArgument(
                    f"unsafe tar member {member.name!r}: a whiteout of {victim!r}"
                )
            _remove(root / rel.parent / victim)
            continue
        target = root / rel
        if os.path.lexists(target) and not (
            member.isdir() and target.is_dir() and not target.is_symlink()
        ):  # Docker's rule (lstat): only a real directory stays under a directory entry
            _remove(target)  # replace, never write through a link or into a shared inode
        if member.islnk():
            _no_symlink_on_the_way(root, PurePosixPath(os.path.normpath(member.linkname)) / "x")
        target.parent.mkdir(parents=True, exist_ok=True)
        tar.extract(member.replace(name=str(rel), deep=False), root, numeric_owner=True,
                    filter="fully_trusted")  # fmt: skip  # checked above, owners kept
        this_layer.add(rel)


def apply_layer_file(path: Path, root: Path) -> None:
    """A layer file (plain, gzip, bzip2 or xz tar) onto root."""
    try:
        with tarfile.open(path, "r:*") as tar:
            apply_layer(tar, root)
    except tarfile.TarError as e:
        raise InvalidArgument(f"not a readable layer tarball: {e}") from e


class _HashingWriter(io.RawIOBase):
    """A file wrapper that hashes what is written (the layer's diff id, in one pass)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)


def tar_tree(root: Path, out_path: Path) -> tuple[str, int]:
    """An uncompressed, reproducible tar of root (sorted names, mtimes and owners as they are,
    no user names): (sha256:<diff id>, size). The same tree gives the same id."""
    with out_path.open("wb") as raw:
        writer = _HashingWriter(raw)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
            for directory, dirs, files in os.walk(root):
                dirs.sort()
                for name in sorted([*dirs, *files]):
                    full = os.path.join(directory, name)
                    info = tar.gettarinfo(full, arcname=os.path.relpath(full, root))
                    info.uname = info.gname = ""
                    if info.isreg():
                        with open(full, "rb") as f:
                            tar.addfile(info, f)
                    elif info.isdir() or info.issym() or info.islnk():
                        tar.addfile(info)
    return "sha256:" + writer.sha.hexdigest(), writer.size


def tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total
