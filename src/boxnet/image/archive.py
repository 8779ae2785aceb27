"""Image archives: `docker save` tarballs (manifest.json, configs, layer tars) and OCI image
layouts (oci-layout, index.json, blobs/), loaded into the store; and Docker's save format out.

Manifests from a layout or a registry go through `ingest_manifest`: config and layers are stored
as blobs (each verified against its digest), each layer's diff id is computed from its
uncompressed bytes and checked against the config's rootfs.diff_ids, then the image is built.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from boxnet.errors import InvalidArgument
from boxnet.image import reference
from boxnet.image.config import digest_of, host_arch, parse_config
from boxnet.image.store import Layer, Store

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def diff_id_of(path: Path) -> tuple[str, int]:
    """sha256 and size of the uncompressed bytes of a (maybe gzip) layer blob."""
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if gz else raw  # type: ignore[assignment]
        try:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                sha.update(chunk)
                size += len(chunk)
        except (OSError, EOFError) as e:
            raise InvalidArgument(f"layer {path.name}: not a readable (gzip) tarball: {e}") from e
    return "sha256:" + sha.hexdigest(), size


def choose_platform(index: dict[str, Any], what: str) -> dict[str, Any]:
    """The linux/<host arch> entry of an image index (manifest list)."""
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    arch = host_arch()
    for m in entries:
        platform = m.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            return m
    if len(entries) == 1 and not entries[0].get("platform"):
        return entries[0]
    offered = sorted(
        f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
        for m in entries
    )
    raise InvalidArgument(f"{what}: no linux/{arch} image in the index (it has {offered})")


def ingest_manifest(
    store: Store, manifest: dict[str, Any], fetch: Callable[[dict[str, Any]], Path], what: str
) -> str:
    """Store a manifest's config and layers (`fetch(descriptor)` -> a local file, already
    verified against descriptor["digest"]), build the image, return its id."""
    config_desc = manifest.get("config")
    layer_descs = manifest.get("layers")
    if not isinstance(config_desc, dict) or not isinstance(layer_descs, list):
        raise InvalidArgument(f"{what}: not an image manifest (no config and layers)")
    config_bytes = fetch(config_desc).read_bytes()
    config = parse_config(config_bytes, f"{what}: config")
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(layer_descs):
        raise InvalidArgument(
            f"{what}: {len(layer_descs)} layers but the config lists {len(diff_ids)} diff ids"
        )
    layers = []
    for desc, expected in zip(layer_descs, diff_ids, strict=True):
        digest = str(desc.get("digest", ""))
        if not store.has_blob(digest):
            with fetch(desc).open("rb") as f:
                store.put_blob_file(f, digest)
        diff_id, diff_size = diff_id_of(store.blob_path(digest))
        if diff_id != expected:
            raise InvalidArgument(
                f"{what}: layer {digest} unpacks to {diff_id}, the config says {expected}"
            )
        media = str(desc.get("mediaType") or DOCKER_LAYER)
        size = store.blob_path(digest).stat().st_size
        layers.append(Layer(digest, media, size, diff_id, diff_size))
    return store.add(config_bytes, layers)


class _Archive:
    """A tarball's files by name, following symlinks inside the archive (Docker's save links
    repeated layers), read through a temporary directory."""

    def __init__(self, tar: tarfile.TarFile, workdir: Path) -> None:
        self.tar = tar
        self.workdir = workdir
        self.members = {posixpath.normpath(m.name): m for m in tar.getmembers()}

    def has(self, name: str) -> bool:
        return posixpath.normpath(name) in self.members

    def file(self, name: str, hops: int = 0) -> Path:
        key = posixpath.normpath(name)
        member = self.members.get(key)
        if member is None or hops > 8:
            raise InvalidArgument(f"image archive: {name} is missing")
        if member.issym():
            return self.file(posixpath.join(posixpath.dirname(key), member.linkname), hops + 1)
        if not member.isreg():
            raise InvalidArgument(f"image archive: {name} is not a file")
        out = self.workdir / hashlib.sha256(key.encode()).hexdigest()
        if not out.exists():
            src = self.tar.extractfile(member)
            assert src is not None
            with out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        return out

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.file(name).read_bytes())
        except ValueError as e:
            raise InvalidArgument(f"image archive: {name} is not JSON: {e}") from e


Tagger = Callable[[str, str, bool], None]  # (reference, image id, only check): raises if refused


def load(store: Store, source: IO[bytes], tag: Tagger) -> list[str]:
    """Load a `docker save` tarball or an OCI layout tarball; `tag(reference, id, False)` for
    each name it carries, each checked first (`tag(..., True)`) before anything is stored.
    Returns the lines `docker load` prints: "Loaded image: X" / "Loaded image ID: Y"."""
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=store.tmp_prefix("load"), dir=store.root) as tmp:
        try:
            tar = tarfile.open(fileobj=source, mode="r:*")
        except tarfile.TarError as e:
            raise InvalidArgument(f"cannot load: not a readable tarball: {e}") from e
        with tar:
            archive = _Archive(tar, Path(tmp))
            if archive.has("manifest.json"):
                return _load_docker(store, archive, tag)
            if archive.has("index.json"):
                return _load_oci(store, archive, tag)
        raise InvalidArgument(
            "cannot load: the tarball has neither manifest.json (docker save) nor index.json"
            " (OCI image layout)",
            hint="to add a root file system tarball, use boxnet import",
        )


def _load_docker(store: Store, archive: _Archive, tag: Tagger) -> list[str]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("image archive: manifest.json is not a list")
    loaded = []
    for entry in entries:
        config_name, layer_names = entry.get("Config"), entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise InvalidArgument("image archive: a manifest.json entry lacks Config or Layers")
        config_bytes = archive.file(config_name).read_bytes()
        tags = [str(t) for t in entry.get("RepoTags") or []]
        for t in tags:
            tag(t, digest_of(config_bytes), True)
        layers = []
        for name in layer_names:
            path = archive.file(str(name))
            diff_id, diff_size = diff_id_of(path)
            with path.open("rb") as f:
                digest = store.put_blob_file(f)
            media = (
                DOCKER_LAYER
                if digest != diff_id
                else "application/vnd.docker.image.rootfs.diff.tar"
            )
            layers.append(Layer(digest, media, path.stat().st_size, diff_id, diff_size))
        image_id = store.add(config_bytes, layers)
        for t in tags:
            tag(t, image_id, False)
            loaded.append(f"Loaded image: {t}")
        if not tags:
            loaded.append(f"Loaded image ID: {image_id}")
    return loaded


def _load_oci(store: Store, archive: _Archive, tag: Tagger) -> list[str]:
    def blob(desc: dict[str, Any]) -> Path:
        digest = str(desc.get("digest", ""))
        store.blob_path(digest)  # refuses what is not sha256:<hex>
        path = archive.file("blobs/" + digest.replace(":", "/"))
        with path.open("rb") as f:
            got = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        if got != digest:
            raise InvalidArgument(f"image archive: blob {digest} has digest {got}")
        return path

    index = archive.json("index.json")
    loaded = []
    for desc in index.get("manifests") or []:
        annotations = desc.get("annotations") or {}
        name = annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME) or ""
        what = f"OCI layout entry {name or desc.get('digest')}"
        manifest = json.loads(blob(desc).read_bytes())
        while manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            manifest = json.loads(blob(choose_platform(manifest, what)).read_bytes())
        named = bool(name) and _is_reference(name)
        if named:
            tag(name, str((manifest.get("config") or {}).get("digest", "")), True)
        image_id = ingest_manifest(store, manifest, blob, what)
        if named:
            tag(name, image_id, False)
            loaded.append(f"Loaded image: {reference.parse(name).familiar()}")
        else:  # a bare tag ("latest") names no repository
            loaded.append(f"Loaded image ID: {image_id}")
    return loaded


def _is_reference(name: str) -> bool:
    try:
        ref = reference.parse(name)
    except InvalidArgument:
        return False
    return ref.tag is not None or "/" in name


def save(store: Store, images: list[tuple[str, list[str]]]) -> Iterator[bytes]:
    """Docker's save format for (image id, familiar tags) pairs, as chunks of a tarball."""
    store.root.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryFile(dir=store.root) as out,
        tempfile.TemporaryDirectory(prefix=store.tmp_prefix("save"), dir=store.root) as tmp,
    ):
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            manifest: list[dict[str, Any]] = []
            repositories: dict[str, dict[str, str]] = {}
            written: set[str] = set()
            for image_id, tags in images:
                image = store.get(image_id)
                config_name = f"{image.hex}.json"
                if config_name not in written:
                    tar.add(store.blob_path(image_id), arcname=config_name)
                    written.add(config_name)
                layer_names = []
                for layer in image.layers:
                    name = f"{layer.diff_id.removeprefix('sha256:')}/layer.tar"
                    if name not in written:
                        tar.add(_uncompressed(store, layer, Path(tmp)), arcname=name)
                        written.add(name)
                    layer_names.append(name)
                manifest.append(
                    {"Config": config_name, "RepoTags": tags or None, "Layers": layer_names}
                )
                for t in tags:
                    repo, _, version = t.rpartition(":")
                    repositories.setdefault(repo, {})[version] = image.hex
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
            _add_bytes(tar, "repositories", json.dumps(repositories).encode())
        out.seek(0)
        yield from iter(lambda: out.read(1 << 16), b"")


def _uncompressed(store: Store, layer: Layer, tmp: Path) -> Path:
    path = store.blob_path(layer.digest)
    if layer.digest == layer.diff_id:
        return path
    out = tmp / layer.diff_id.removeprefix("sha256:")
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw) as gz, out.open("wb") as dst:
        shutil.copyfileobj(gz, dst)
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
