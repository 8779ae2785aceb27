"""Pull from a registry speaking the OCI distribution API (v2): manifest, config, layers.

Docker v2 schema2 and OCI manifests; manifest lists and OCI indexes choose linux/<host arch>.
Every blob is checked against its digest before it is kept. Plain HTTP only for the registries
named in `insecure-registries` (host[:port] or a CIDR; Docker's names) and for loopback ones,
as Docker does; HTTPS otherwise. No token auth (not needed by a local registry).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boxnet.errors import InvalidArgument, NotFound, Unavailable
from boxnet.image import archive, builtin, reference
from boxnet.image.config import digest_of

if TYPE_CHECKING:
    from boxnet.runtime.images import ImageStore

ACCEPT = ", ".join([*archive.MANIFEST_TYPES, *archive.INDEX_TYPES])
TIMEOUT = 30.0
DOCKER_HUB = "registry-1.docker.io"


def is_insecure(domain: str, insecure: tuple[str, ...]) -> bool:
    host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
    if host == "localhost" or domain in insecure or host in insecure:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if address.is_loopback:
        return True
    for entry in insecure:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def builtin_name(text: str) -> str | None:
    """`busybox` or `host` when text names a built-in image's reserved tag."""
    return builtin.RESERVED_TAGS.get(str(reference.parse_tagged(text)))


class Puller:
    def __init__(self, images: ImageStore, text: str, insecure: tuple[str, ...]) -> None:
        self.images = images
        self.ref = reference.parse_tagged(text)
        self.text = text
        host = DOCKER_HUB if self.ref.domain == reference.DEFAULT_DOMAIN else self.ref.domain
        scheme = "http" if is_insecure(self.ref.domain, insecure) else "https"
        self.base = f"{scheme}://{host}/v2/{self.ref.path}"
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.manifest: dict[str, Any] = {}
        self.digest = ""

    # -- HTTP ---------------------------------------------------------------------------------
    def _open(self, url: str, accept: str | None = None) -> Any:
        request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
        try:
            return self.opener.open(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403, 404):
                raise NotFound(
                    f"pull access denied for {self.ref.familiar_repository}, repository does not"
                    " exist or may require 'docker login'",
                    hint=f"the registry answered {e.code} for {url}",
                ) from None
            raise Unavailable(
                f"registry {self.ref.domain}: {e.code} {e.reason} for {url}"
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            hint = None
            if self.base.startswith("https:"):
                hint = (
                    f"a registry on plain HTTP must be named in insecure-registries"
                    f" (daemon.json) or --insecure-registry {self.ref.domain}"
                )
            raise Unavailable(
                f"cannot reach registry {self.ref.domain}: {reason}", hint=hint
            ) from None

    def _get_manifest(self, tag_or_digest: str) -> tuple[dict[str, Any], str]:
        with self._open(f"{self.base}/manifests/{tag_or_digest}", ACCEPT) as resp:
            data = resp.read()
        digest = digest_of(data)
        if tag_or_digest.startswith("sha256:") and digest != tag_or_digest:
            raise InvalidArgument(f"manifest digest mismatch: asked {tag_or_digest}, got {digest}")
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"{self.text}: the registry's manifest is not JSON: {e}") from e
        if not isinstance(doc, dict):
            raise InvalidArgument(f"{self.text}: the registry's manifest is not an object")
        return doc, digest

    def _download(self, desc: dict[str, Any], dest: Path) -> Path:
        digest = str(desc.get("digest", ""))
        self.images.store.blob_path(digest)  # refuses what is not sha256:<hex>
        out = dest / digest.removeprefix("sha256:")
        sha = hashlib.sha256()
        with self._open(f"{self.base}/blobs/{digest}") as resp, out.open("wb") as f:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                sha.update(chunk)
                f.write(chunk)
        if "sha256:" + sha.hexdigest() != digest:
            raise InvalidArgument(f"blob {digest} from {self.ref.domain} has another digest")
        return out

    # -- the pull -------------------------------------------------------------------------------
    def resolve(self) -> None:
        """Fetch the manifest (choosing the platform); errors here become the HTTP status."""
        builtin.check_not_reserved(self.ref)
        manifest, digest = self._get_manifest(self.ref.digest or self.ref.tag or "latest")
        self.digest = digest  # the repo digest names what the tag points at (maybe an index)
        if manifest.get("mediaType") in archive.INDEX_TYPES or "manifests" in manifest:
            chosen = archive.choose_platform(manifest, self.text)
            manifest, _ = self._get_manifest(str(chosen.get("digest", "")))
        if manifest.get("schemaVersion") != 2 or "config" not in manifest:
            raise InvalidArgument(
                f"{self.text}: unsupported manifest (only Docker v2 schema 2 and OCI manifests)"
            )
        self.manifest = manifest

    def run(self) -> Iterator[dict[str, Any]]:
        """Download and register; Docker's progress lines."""
        store = self.images.store
        shown = self.ref.familiar()
        yield {
            "status": f"Pulling from {self.ref.familiar_repository}",
            "id": self.ref.tag or self.ref.digest,
        }
        before = store.tags().get(str(self.ref)) if self.ref.tag else None
        store.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=store.tmp_prefix("pull"), dir=store.root) as tmp:
            files: dict[str, Path] = {}
            for desc in [self.manifest["config"], *(self.manifest.get("layers") or [])]:
                digest = str(desc.get("digest", ""))
                short = digest.removeprefix("sha256:")[:12]
                if store.has_blob(digest):
                    files[digest] = store.blob_path(digest)
                    if desc is not self.manifest["config"]:
                        yield {"status": "Already exists", "progressDetail": {}, "id": short}
                    continue
                files[digest] = self._download(desc, Path(tmp))
                if desc is not self.manifest["config"]:
                    yield {"status": "Pull complete", "progressDetail": {}, "id": short}
            image_id = archive.ingest_manifest(
                store, self.manifest, lambda d: files[str(d.get("digest"))], self.text
            )
        if self.ref.tag:
            store.set_tag(self.ref, image_id)
        store.add_repo_digest(image_id, f"{self.ref.repository}@{self.digest}")
        yield {"status": f"Digest: {self.digest}"}
        if before == image_id:
            yield {"status": f"Status: Image is up to date for {shown}"}
        else:
            yield {"status": f"Status: Downloaded newer image for {shown}"}
