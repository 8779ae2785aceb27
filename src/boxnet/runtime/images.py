"""Container images: plain root file system trees under `<data-root>/images/<name>/rootfs`.

Built-ins: `host` (no rootfs: the shim binds the host's / read-only) and `busybox` (built on first
use from the host's static busybox). `import_image` adds a tarball or a directory. Every image is
built in a temporary directory next to its final place and renamed into place, so a crashed or
concurrent build never leaves a half image behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from boxnet.errors import Conflict, InvalidArgument, NotFound, Unavailable
from boxnet.paths import Paths

HOST_IMAGE = "host"
BUSYBOX_IMAGE = "busybox"
BUILTIN_IMAGES = (HOST_IMAGE, BUSYBOX_IMAGE)
BUSYBOX_BINARY = Path("/bin/busybox")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}")
_TMP_PREFIX = ".tmp-"
_META = "image.json"

BUSYBOX_DIRS = [
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "etc",
    "proc",
    "sys",
    "dev",
    "tmp",
    "root",
    "var",
    "var/tmp",
    "run",
    "home",
    "www",
]
BUSYBOX_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
    # Empty placeholders: the shim bind-mounts the container's own files over them.
    "etc/hosts": "",
    "etc/resolv.conf": "",
    "etc/hostname": "",
}


@dataclass(frozen=True)
class ImageInfo:
    name: str
    size_bytes: int
    created: float  # Unix time, as Docker's API reports it


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"invalid image name {name!r}",
            hint="use 1-128 characters: lower-case letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)",
        )
    return name


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
    """Refuse a member whose parent directories inside dest include a symlink: tarfile would
    follow it and write outside the image (e.g. `etc -> /` then `etc/passwd`)."""
    current = dest
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise InvalidArgument(f"unsafe tar member {str(rel)!r}: its parent {part!r} is a link")


def _tar_filter(dest: Path) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    def check(member: tarfile.TarInfo, _path: str) -> tarfile.TarInfo | None:
        reason = unsafe_member_reason(member)
        if reason:
            raise InvalidArgument(f"unsafe tar member {member.name!r}: {reason}")
        if member.isdev():  # device nodes and fifos: /dev is the shim's own tmpfs anyway
            return None
        rel = PurePosixPath(os.path.normpath(member.name))
        if str(rel) == ".":
            return None
        _no_symlink_on_the_way(dest, rel)
        if member.islnk():
            _no_symlink_on_the_way(dest, PurePosixPath(member.linkname) / "x")
        target = dest / rel
        if target.is_symlink() and not member.issym():  # tarfile would write through it
            target.unlink()
        return member.replace(name=str(rel), deep=False)

    return check


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy a directory with owners, modes and symlinks; skip device nodes, fifos and sockets."""

    def special(directory: str, names: list[str]) -> list[str]:
        skip = []
        for name in names:
            mode = os.lstat(os.path.join(directory, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                skip.append(name)
        return skip

    shutil.copytree(source, dest, symlinks=True, ignore=special)
    for src_dir, _dirs, files in os.walk(source):
        rel = os.path.relpath(src_dir, source)
        for name in [".", *files]:  # every directory comes up once as "."
            src, dst = os.path.join(src_dir, name), os.path.join(dest, rel, name)
            if os.path.lexists(dst):
                st = os.lstat(src)
                os.lchown(dst, st.st_uid, st.st_gid)


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


class ImageStore:
    """The images of one data root."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def resolve(self, name: str) -> Path | None:
        """The rootfs of an image; None for the host image. Builds busybox on first use."""
        if name == HOST_IMAGE:
            return None
        if name == BUSYBOX_IMAGE:
            return self.ensure_busybox()
        rootfs = self.paths.image_rootfs(name)
        if not NAME_RE.fullmatch(name) or not rootfs.is_dir():
            raise NotFound(
                f"No such image: {name}",
                hint="boxnet images lists the images; boxnet import TARBALL NAME adds one",
            )
        return rootfs

    def list_images(self) -> list[ImageInfo]:
        self.ensure_busybox()
        infos = [ImageInfo(HOST_IMAGE, 0, 0.0)]
        for entry in sorted(self.paths.images.iterdir()):
            if entry.name.startswith(_TMP_PREFIX) or not (entry / "rootfs").is_dir():
                continue
            infos.append(self._info(entry))
        return infos

    def import_image(self, source: Path, name: str) -> ImageInfo:
        validate_name(name)
        if name in BUILTIN_IMAGES:
            raise Conflict(f"image {name!r} is built in and cannot be replaced")
        if self.paths.image_rootfs(name).exists():
            raise Conflict(
                f"image {name!r} already exists",
                hint=f"boxnet image rm {name} first, or pick a name",
            )
        if not source.exists():
            raise NotFound(f"cannot import {source}: no such file or directory")

        def fill(rootfs: Path) -> None:
            if source.is_dir():
                _copy_tree(source, rootfs)
                return
            try:
                with tarfile.open(source, "r:*") as tar:
                    rootfs.mkdir()
                    tar.extractall(rootfs, filter=_tar_filter(rootfs), numeric_owner=True)
            except tarfile.TarError as e:
                raise InvalidArgument(f"cannot import {source}: not a readable tarball: {e}") from e

        return self._build(name, fill)

    def remove_image(self, name: str) -> None:
        """Remove an imported image (the caller checks that no container uses it)."""
        validate_name(name)
        if name in BUILTIN_IMAGES:
            raise Conflict(f"image {name!r} is built in and cannot be removed")
        image_dir = self.paths.images / name
        if not image_dir.is_dir():
            raise NotFound(f"No such image: {name}")
        # Rename first so the name disappears atomically, then delete at leisure.
        trash = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}rm-", dir=self.paths.images))
        os.rename(image_dir, trash / name)
        shutil.rmtree(trash)

    def ensure_busybox(self) -> Path:
        rootfs = self.paths.image_rootfs(BUSYBOX_IMAGE)
        if rootfs.is_dir():
            return rootfs
        if not BUSYBOX_BINARY.is_file():
            raise Unavailable(
                f"cannot build the busybox image: {BUSYBOX_BINARY} is missing",
                hint="apt-get install busybox-static",
            )
        self._build(BUSYBOX_IMAGE, _fill_busybox)
        return rootfs

    def _build(self, name: str, fill: Callable[[Path], None]) -> ImageInfo:
        self.paths.images.mkdir(parents=True, exist_ok=True)
        self._remove_stale_builds()
        work = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=self.paths.images))
        try:
            fill(work / "rootfs")
            meta = {"name": name, "created": time.time(), "size": _tree_size(work / "rootfs")}
            (work / _META).write_text(json.dumps(meta) + "\n")
            try:
                os.rename(work, self.paths.images / name)
            except OSError as e:  # someone else finished the same image first: keep theirs
                if not (self.paths.images / name / "rootfs").is_dir():
                    raise Conflict(f"cannot create image {name!r}: {e.strerror}") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self._info(self.paths.images / name)

    def _remove_stale_builds(self) -> None:
        """Temporary directories left by builders that died (their PID is in the name)."""
        for entry in self.paths.images.glob(f"{_TMP_PREFIX}*-*"):
            pid = entry.name[len(_TMP_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(entry, ignore_errors=True)

    def _info(self, image_dir: Path) -> ImageInfo:
        try:
            meta = json.loads((image_dir / _META).read_text())
            return ImageInfo(image_dir.name, int(meta["size"]), float(meta["created"]))
        except (OSError, ValueError, KeyError):
            created = image_dir.stat().st_mtime
            return ImageInfo(image_dir.name, _tree_size(image_dir / "rootfs"), created)


def _fill_busybox(rootfs: Path) -> None:
    for d in BUSYBOX_DIRS:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "root").chmod(0o700)
    shutil.copy2(BUSYBOX_BINARY, rootfs / "bin/busybox")
    applets = subprocess.run(
        [str(BUSYBOX_BINARY), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = rootfs / applet
        if applet == "bin/busybox" or link.exists() or ".." in applet or applet.startswith("/"):
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    for rel, text in BUSYBOX_FILES.items():
        (rootfs / rel).write_text(text)


# Module-level entry points for the daemon layers (one store per call is cheap: it holds no state).
def resolve(paths: Paths, name: str) -> Path | None:
    return ImageStore(paths).resolve(name)


def list_images(paths: Paths) -> list[ImageInfo]:
    return ImageStore(paths).list_images()


def import_image(paths: Paths, source: Path, name: str) -> ImageInfo:
    return ImageStore(paths).import_image(source, name)


def remove_image(paths: Paths, name: str) -> None:
    ImageStore(paths).remove_image(name)
