"""Container images for the daemon layers: look up, import, tag, remove (boxnet.image does the
storing; this module adds the built-ins, the reserved names and the data-root migration).

Built-ins: `host` (no rootfs: the shim binds the host's / read-only) and `busybox` (built on first
use from the host's static busybox). Images imported before the content-addressed store
(`images/<name>/rootfs`) are adopted on first use as `<name>:latest`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.image import builtin, reference
from boxnet.image.builtin import BUSYBOX_BINARY, BUSYBOX_IMAGE, HOST_IMAGE, TAR_MEDIA_TYPE
from boxnet.image.changes import apply_changes
from boxnet.image.config import canonical_bytes, new_config, rfc3339
from boxnet.image.layers import tar_tree, unsafe_member_reason
from boxnet.image.store import TMP_PREFIX, Image, Layer, Store
from boxnet.paths import Paths

__all__ = [
    "BUSYBOX_BINARY",
    "BUSYBOX_IMAGE",
    "HOST_IMAGE",
    "Image",
    "ImageStore",
    "unsafe_member_reason",
]

_STORE_ENTRIES = {"blobs", "by-id", "repositories.json"}


class ImageStore:
    """The images of one data root, with the built-ins."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.store = Store(paths)
        self.store.remove_stale_temporaries()
        self._adopt_legacy()

    # -- lookup ---------------------------------------------------------------------------------
    def lookup(self, name: str) -> Image:
        """The image a name, tag, id or id prefix means (building a built-in on first use)."""
        try:
            ref = reference.parse_tagged(name)
        except InvalidArgument:
            ref = None
        if ref is not None:
            builtin_name = builtin.RESERVED_TAGS.get(str(ref))
            if builtin_name == HOST_IMAGE:
                builtin.ensure_host(self.store)
            elif builtin_name == BUSYBOX_IMAGE:
                builtin.ensure_busybox(self.store)
        return self.store.get(self.store.lookup(name))

    def resolve(self, name: str) -> Path | None:
        """The rootfs of an image; None for the host image."""
        return self.lookup(name).rootfs

    def rootfs_of(self, image_id: str) -> Path | None:
        return self.store.get(image_id).rootfs

    def list_images(self) -> list[Image]:
        builtin.ensure_host(self.store)
        builtin.ensure_busybox(self.store)
        return [self.store.get(i) for i in self.store.ids()]

    # -- changes --------------------------------------------------------------------------------
    def import_image(
        self,
        source: Path | IO[bytes],
        name: str | None,
        comment: str = "",
        move_tree: bool = False,
        changes: list[str] | None = None,
    ) -> Image:
        """A root file system (tarball: plain, gz, bz2, xz; or a directory) as a one-layer image,
        tagged `name` (`NAME` = `NAME:latest`) when given. `move_tree`: a directory becomes the
        image's rootfs by a rename (its inodes stay: an overlay using it keeps working)."""
        ref = reference.parse_tagged(name) if name else None
        if ref is not None:
            builtin.check_not_reserved(ref)
        if changes:
            apply_changes({}, changes)  # refused before anything is read or stored
        if isinstance(source, Path) and not source.exists():
            raise NotFound(f"cannot import {source}: no such file or directory")
        self.paths.images.mkdir(parents=True, exist_ok=True)
        work = Path(
            tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-imp-", dir=self.paths.images)
        )
        try:
            layer_path = work / "layer.tar"
            if isinstance(source, Path) and source.is_dir():
                diff_id, size = tar_tree(source, layer_path)
            else:
                diff_id, size = _decompress_to(source, layer_path)
            with layer_path.open("rb") as f:
                self.store.put_blob_file(f, diff_id)
            shown = str(source) if isinstance(source, Path) else "-"
            config = new_config(
                [diff_id],
                rfc3339(os.path.getmtime(layer_path)),
                comment=comment or f"Imported from {shown}",
            )
            apply_changes(config, changes or [])
            fill = None
            if move_tree and isinstance(source, Path):
                tree = source

                def fill(rootfs: Path) -> None:
                    rootfs.rmdir()
                    os.rename(tree, rootfs)

            try:
                image_id = self.store.add(
                    canonical_bytes(config),
                    [Layer(diff_id, TAR_MEDIA_TYPE, size, diff_id)],
                    fill=fill,
                )
            except BaseException:
                if not any(
                    diff_id in (x.digest for x in self.store.get(i).layers)
                    for i in self.store.ids()
                ):
                    self.store.blob_path(diff_id).unlink(missing_ok=True)
                raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if ref is not None:
            self.store.set_tag(ref, image_id)
        return self.store.get(image_id)

    def tag(self, source: str, target: str) -> None:
        image = self.lookup(source)
        ref = reference.parse(target)
        if ref.digest is not None:
            raise InvalidArgument(f"cannot tag with a digest reference: {target}")
        builtin.check_not_reserved(ref)
        self.store.set_tag(ref, image.id)

    def remove(
        self, name: str, force: bool, users: Callable[[str], list[str]]
    ) -> list[dict[str, str]]:
        """Docker's `rmi`: untag a tag; delete the image when no tag is left. `users(id)` names
        the containers that use an image: then only untag with force, else 409."""
        image = self.lookup(name)
        try:
            ref = reference.parse_tagged(name)
        except InvalidArgument:
            ref = None
        by_tag = ref is not None and str(ref) in image.tags
        if image.id in builtin.builtin_ids(self.store):
            if ref is None or not by_tag or str(ref) in builtin.RESERVED_TAGS:
                raise Conflict(f"image {name!r} is built in and cannot be removed")
            self.store.remove_tag(ref)  # another tag of a built-in: only that tag goes
            return [{"Untagged": ref.familiar()}]
        out: list[dict[str, str]] = []
        in_use = users(image.id)
        if by_tag and ref is not None and (len(image.tags) > 1 or (in_use and force)):
            self.store.remove_tag(ref)  # other tags left, or forced while in use: untag only
            return [{"Untagged": ref.familiar()}]
        if in_use and not force:
            what = f'repository reference "{name}"' if by_tag else image.hex[:12]
            raise Conflict(
                f"conflict: unable to remove {what} (must force) - container {in_use[0][:12]}"
                f" is using its referenced image {image.hex[:12]}",
                hint=f"boxnet rm {in_use[0][:12]} first, or boxnet rmi -f",
            )
        if not by_tag and len(image.tags) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {image.hex[:12]} (must be forced) - image is"
                " referenced in multiple repositories",
                hint="remove the tags one by one, or boxnet rmi -f",
            )
        for tag in image.tags:
            self.store.remove_tag(reference.parse(tag))
            out.append({"Untagged": reference.familiar(tag)})
        if in_use:  # forced: the tags go, the image stays for its containers (dangling)
            return out
        self.store.delete(image.id)
        out.append({"Deleted": image.id})
        return out

    def tag_loaded(self, name: str, image_id: str, only_check: bool = False) -> None:
        """A name carried by a loaded archive (a built-in's name only for its own id)."""
        ref = reference.parse_tagged(name)
        builtin_name = builtin.RESERVED_TAGS.get(str(ref))
        if builtin_name is not None and self.lookup(builtin_name).id != image_id:
            builtin.check_not_reserved(ref)
        if not only_check:
            self.store.set_tag(ref, image_id)

    def for_save(self, names: list[str]) -> list[tuple[str, list[str]]]:
        """(id, familiar tags) per name: a tag saves that tag, an id every tag of the image."""
        chosen: dict[str, list[str]] = {}
        for name in names:
            image = self.lookup(name)
            if image.rootfs is None:
                raise InvalidArgument(f"image {name} has no layers to save (the host's own /)")
            try:
                ref = reference.parse_tagged(name)
            except InvalidArgument:
                ref = None
            tags = chosen.setdefault(image.id, [])
            if ref is not None and str(ref) in image.tags:
                picked = [ref.familiar()]
            else:
                picked = [reference.familiar(t) for t in image.tags]
            tags.extend(t for t in picked if t not in tags)
        return list(chosen.items())

    def prune(self, everything: bool, users: Callable[[str], list[str]]) -> dict[str, object]:
        """Docker's image prune: dangling images (all unused with everything), not in use."""
        keep = builtin.builtin_ids(self.store)
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for image_id in self.store.ids():
            image = self.store.get(image_id)
            if image_id in keep or users(image_id) or (image.tags and not everything):
                continue
            for tag in image.tags:
                self.store.remove_tag(reference.parse(tag))
                deleted.append({"Untagged": reference.familiar(tag)})
            self.store.delete(image_id)
            deleted.append({"Deleted": image_id})
            reclaimed += image.size
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- migration ------------------------------------------------------------------------------
    def _adopt_legacy(self) -> None:
        """`images/<name>/rootfs` from before the content-addressed store: adopted as
        `<name>:latest`, its rootfs moved (not copied, never deleted) into the store, so a
        container still running on it from before the upgrade keeps its files. The old busybox
        stays where it is (such a container may use it; the built-in is rebuilt beside it)."""
        root = self.paths.images
        if not root.is_dir():
            return
        for entry in root.iterdir():
            if entry.name.startswith(TMP_PREFIX):  # a temporary: see remove_stale_temporaries
                continue
            if entry.name in _STORE_ENTRIES or entry.name.startswith("."):
                continue
            if entry.name in (BUSYBOX_IMAGE, HOST_IMAGE) or not (entry / "rootfs").is_dir():
                continue
            try:
                self.import_image(
                    entry / "rootfs",
                    entry.name,
                    comment="adopted from an older boxnet",
                    move_tree=True,
                )
            except (InvalidArgument, Conflict):
                continue  # keep it where it is: nothing lost, a person can look at it
            shutil.rmtree(entry, ignore_errors=True)  # its rootfs moved out: only image.json


def _decompress_to(source: Path | IO[bytes], out_path: Path) -> tuple[str, int]:
    """The uncompressed tar of a plain, gzip, bzip2 or xz tarball: (sha256 diff id, size)."""
    import hashlib
    import tarfile

    raw: IO[bytes] = source.open("rb") if isinstance(source, Path) else source
    try:
        head = raw.read(6)
        raw.seek(0)  # a file or a BytesIO of the request body
        stream: IO[bytes] = raw
        if head.startswith(b"\x1f\x8b"):
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw))
        elif head.startswith(b"BZh"):
            stream = cast(IO[bytes], bz2.BZ2File(raw))
        elif head.startswith(b"\xfd7zXZ"):
            stream = cast(IO[bytes], lzma.LZMAFile(raw))
        sha, size = hashlib.sha256(), 0
        try:
            with out_path.open("wb") as out:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            with tarfile.open(out_path, "r:") as tar:  # readable as a tarball at all?
                tar.next()
        except (OSError, EOFError, lzma.LZMAError, tarfile.TarError) as e:
            shown = source if isinstance(source, Path) else "the request body"
            raise InvalidArgument(f"cannot import {shown}: not a readable tarball: {e}") from e
        return "sha256:" + sha.hexdigest(), size
    finally:
        if isinstance(source, Path):
            raw.close()


# Module-level entry points for the daemon layers (a store per call is cheap: it holds no state).
def lookup(paths: Paths, name: str) -> Image:
    return ImageStore(paths).lookup(name)


def resolve(paths: Paths, name: str) -> Path | None:
    return ImageStore(paths).resolve(name)


def list_images(paths: Paths) -> list[Image]:
    return ImageStore(paths).list_images()
