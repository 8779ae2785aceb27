"""The image store of one data root: content-addressed, one flattened rootfs per image.

    images/blobs/sha256/<hex>        configs and layer tarballs (as they came), each stored once
    images/by-id/<hex>/meta.json     the image's layers (blob digest, media type, diff id), size,
                                     repo digests, when it arrived
    images/by-id/<hex>/rootfs/       the layers applied in order, whiteouts done (the runtime's
                                     overlay lower dir); absent for the `host` image
    images/repositories.json         {"docker.io/library/alpine:3.10": "sha256:<id>", ...}

The image id is the sha256 of its config blob. Every image is built in a temporary directory
and renamed into place, so a crash never leaves half an image; tags change under one lock with
an atomic rename of repositories.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from boxnet.errors import InvalidArgument, NotFound
from boxnet.image import reference
from boxnet.image.config import digest_of, parse_config
from boxnet.image.layers import apply_layer_file, tree_size
from boxnet.paths import Paths

TMP_PREFIX = ".tmp-"
_LOCK = threading.RLock()  # one daemon process: tags and renames under this lock
_NO_SUCH_HINT = "boxnet images lists the images; boxnet pull, load or import adds one"


@dataclass(frozen=True)
class Layer:
    digest: str  # the blob as stored (maybe gzip): what manifests name
    media_type: str
    size: int
    diff_id: str  # sha256 of the uncompressed tar: what the config names
    diff_size: int = 0  # bytes of the uncompressed tar (0: as `size`, the blob is plain)


@dataclass
class Image:
    id: str  # sha256:<hex>
    config: dict[str, Any]
    layers: list[Layer]
    size: int
    tags: list[str] = field(default_factory=list)  # canonical references
    repo_digests: list[str] = field(default_factory=list)
    rootfs: Path | None = None  # None: no root of its own (the host image)

    @property
    def hex(self) -> str:
        return self.id.removeprefix("sha256:")


def no_such_image(text: str) -> NotFound:
    return NotFound(f"No such image: {text}", hint=_NO_SUCH_HINT)


class Store:
    def __init__(self, paths: Paths) -> None:
        self.root = paths.images
        self.blobs = self.root / "blobs" / "sha256"
        self.by_id = self.root / "by-id"
        self.tags_file = self.root / "repositories.json"

    # -- blobs ----------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if (
            algo != "sha256"
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise InvalidArgument(f"unsupported digest {digest!r}: expected sha256:<64 hex>")
        return self.blobs / hexpart

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob_bytes(self, data: bytes) -> str:
        digest = digest_of(data)
        if not self.has_blob(digest):
            self.put_blob_stream(iter([data]), digest)
        return digest

    def put_blob_stream(self, chunks: Iterable[bytes], expected: str | None = None) -> str:
        """Store a blob written chunk by chunk; verified against `expected` when given."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    sha.update(chunk)
                    out.write(chunk)
            digest = "sha256:" + sha.hexdigest()
            if expected is not None and digest != expected:
                raise InvalidArgument(f"blob digest mismatch: expected {expected}, got {digest}")
            os.rename(tmp, self.blob_path(digest))
            return digest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_blob_file(self, src: IO[bytes], expected: str | None = None) -> str:
        return self.put_blob_stream(iter(lambda: src.read(1 << 20), b""), expected)

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from the image store") from None

    # -- images ---------------------------------------------------------------------------------
    def exists(self, image_id: str) -> bool:
        return (self.by_id / image_id.removeprefix("sha256:") / "meta.json").is_file()

    def ids(self) -> list[str]:
        if not self.by_id.is_dir():
            return []
        return [
            "sha256:" + e.name
            for e in sorted(self.by_id.iterdir())
            if not e.name.startswith(".") and (e / "meta.json").is_file()
        ]

    def get(self, image_id: str) -> Image:
        image_dir = self.by_id / image_id.removeprefix("sha256:")
        try:
            meta = json.loads((image_dir / "meta.json").read_text())
        except FileNotFoundError:
            raise no_such_image(image_id) from None
        config = json.loads(self.read_blob(image_id))
        layers = [Layer(**layer) for layer in meta["layers"]]
        rootfs = image_dir / "rootfs" if meta.get("has_rootfs", True) else None
        tags = sorted(t for t, i in self.tags().items() if i == image_id)
        return Image(image_id, config, layers, int(meta["size"]), tags,
                     list(meta.get("repo_digests", [])), rootfs)  # fmt: skip

    def add(
        self,
        config_bytes: bytes,
        layers: list[Layer],
        *,
        fill: Callable[[Path], None] | None = None,
        has_rootfs: bool = True,
    ) -> str:
        """Register an image from its config and its layers (already stored as blobs); the
        rootfs is the layers applied in order (or made by `fill`). Idempotent: an image that
        exists is kept as it is."""
        config = parse_config(config_bytes)
        diff_ids = config["rootfs"]["diff_ids"]
        if [layer.diff_id for layer in layers] != diff_ids:
            raise InvalidArgument(
                f"the layers' diff ids {[x.diff_id for x in layers]} do not match the config's"
                f" rootfs.diff_ids {diff_ids}"
            )
        image_id = self.put_blob_bytes(config_bytes)
        if self.exists(image_id):
            return image_id
        self.by_id.mkdir(parents=True, exist_ok=True)
        self.remove_stale_temporaries()
        work = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=self.by_id))
        try:
            size = 0
            if has_rootfs:
                rootfs = work / "rootfs"
                rootfs.mkdir()
                if fill is not None:
                    fill(rootfs)
                for layer in layers if fill is None else ():
                    apply_layer_file(self.blob_path(layer.digest), rootfs)
                size = tree_size(rootfs)
            meta = {
                "layers": [layer.__dict__ for layer in layers],
                "size": size,
                "has_rootfs": has_rootfs,
                "added": time.time(),
            }
            (work / "meta.json").write_text(json.dumps(meta) + "\n")
            with _LOCK:
                try:
                    os.rename(work, self.by_id / image_id.removeprefix("sha256:"))
                except OSError:  # someone else finished the same image first: keep theirs
                    if not self.exists(image_id):
                        raise
        except BaseException:
            if not self.exists(image_id):  # nothing of a refused image stays
                self.blob_path(image_id).unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return image_id

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        with _LOCK:
            path = self.by_id / image_id.removeprefix("sha256:") / "meta.json"
            meta = json.loads(path.read_text())
            digests = [
                d
                for d in meta.get("repo_digests", [])
                if d.split("@")[0] != repo_digest.split("@")[0]
            ]
            meta["repo_digests"] = [*digests, repo_digest]
            _write_atomic(path, json.dumps(meta) + "\n")

    def delete(self, image_id: str) -> None:
        """Remove the image's record and rootfs (the caller checked tags and users); blobs no
        other image names go too."""
        with _LOCK:
            image = self.get(image_id)
            image_dir = self.by_id / image.hex
            trash = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-rm-", dir=self.by_id))
            os.rename(image_dir, trash / image.hex)  # the id disappears atomically
            used = {layer.digest for other in self.ids() for layer in self.get(other).layers}
            self.blob_path(image.id).unlink(missing_ok=True)
            for layer in image.layers:
                if layer.digest not in used:
                    self.blob_path(layer.digest).unlink(missing_ok=True)
        shutil.rmtree(trash, ignore_errors=True)

    @staticmethod
    def tmp_prefix(kind: str) -> str:
        """Temporary names carry our PID: what a dead process left is found and removed."""
        return f"{TMP_PREFIX}{os.getpid()}-{kind}-"

    def remove_stale_temporaries(self) -> None:
        """What builds, loads, pulls and blob writes of processes that died left behind."""
        for directory in (self.root, self.by_id, self.blobs):
            if directory.is_dir():
                for entry in directory.glob(f"{TMP_PREFIX}*-*"):
                    pid = entry.name[len(TMP_PREFIX) :].split("-", 1)[0]
                    if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                        if entry.is_dir() and not entry.is_symlink():
                            shutil.rmtree(entry, ignore_errors=True)
                        else:
                            entry.unlink(missing_ok=True)

    # -- tags -----------------------------------------------------------------------------------
    def tags(self) -> dict[str, str]:
        try:
            data = json.loads(self.tags_file.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def set_tag(self, ref: reference.Reference, image_id: str) -> str | None:
        """Point ref (tagged) at image_id; the image it pointed at before, if another."""
        key = str(ref.tagged())
        with _LOCK:
            tags = self.tags()
            previous = tags.get(key)
            tags[key] = image_id
            self._write_tags(tags)
        return previous if previous != image_id else None

    def remove_tag(self, ref: reference.Reference) -> bool:
        key = str(ref.tagged())
        with _LOCK:
            tags = self.tags()
            if tags.pop(key, None) is None:
                return False
            self._write_tags(tags)
        return True

    def _write_tags(self, tags: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.tags_file, json.dumps(dict(sorted(tags.items())), indent=1) + "\n")

    # -- lookup ---------------------------------------------------------------------------------
    def lookup(self, text: str) -> str:
        """An image id from what users write: a full id, a reference (tag; `@digest` matches
        the repo digests), or an id prefix; Docker's order."""
        image_id = reference.full_id(text)
        if image_id is not None and self.exists(image_id):
            return image_id
        try:
            ref = reference.parse(text)
        except InvalidArgument:
            ref = None
        if ref is not None and ref.digest is not None:
            wanted = f"{ref.repository}@{ref.digest}"
            for candidate in self.ids():
                if wanted in self.get(candidate).repo_digests:
                    return candidate
        elif ref is not None:
            found = self.tags().get(str(ref.tagged()))
            if found is not None and self.exists(found):
                return found
        prefix = reference.id_prefix(text)
        if prefix is not None:
            matches = [i for i in self.ids() if i.removeprefix("sha256:").startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"image id prefix {text!r} is ambiguous: give more of it")
        raise no_such_image(text)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    tmp.write_text(text)
    os.rename(tmp, path)
