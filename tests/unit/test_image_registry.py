"""The pull client against a registry served from memory (no sockets): manifest lists and
OCI indexes, Docker schema 2 media types, digest checks, Docker's error texts."""

from __future__ import annotations

import io
import json
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from boxnet.errors import InvalidArgument, NotFound
from boxnet.image.archive import choose_platform
from boxnet.image.registry import Puller, is_insecure
from boxnet.lab.oci import oci_layout
from boxnet.paths import Paths
from boxnet.runtime.images import ImageStore

REGISTRY = "203.0.113.1:5000"


class FakeRegistry:
    """URL -> bytes from an OCI layout: /v2/<repo>/manifests/<tag|digest>, /blobs/<digest>."""

    def __init__(self, layout: Path, repo: str, tag: str) -> None:
        self.blobs = {
            f"sha256:{p.name}": p.read_bytes() for p in (layout / "blobs/sha256").iterdir()
        }
        top = json.loads((layout / "index.json").read_text())["manifests"][0]
        self.base = f"http://{REGISTRY}/v2/{repo}"
        self.tags = {tag: top["digest"]}
        self.requests: list[str] = []

    def open(self, url: str, accept: str | None = None) -> Any:
        self.requests.append(url)
        _kind, _, ref = url.removeprefix(self.base + "/").partition("/")
        digest = self.tags.get(ref, ref)
        if not url.startswith(self.base) or digest not in self.blobs:
            raise NotFound("pull access denied for x, repository does not exist")
        return io.BytesIO(self.blobs[digest])


@pytest.fixture
def images(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(tmp_path / "data", tmp_path / "exec", tmp_path / "sock"))


def _puller(images: ImageStore, fake: FakeRegistry, text: str) -> Puller:
    puller = Puller(images, text, (REGISTRY,))
    puller._open = fake.open  # type: ignore[method-assign]
    return puller


@pytest.mark.parametrize("as_index", [False, True])
def test_pull_verifies_and_registers(images: ImageStore, tmp_path: Path, as_index: bool) -> None:
    image_id = oci_layout(
        tmp_path / "l", [{"f": b"one"}, {"g": b"two"}], cmd=["true"], as_index=as_index
    )
    fake = FakeRegistry(tmp_path / "l", "team/app", "v1")
    puller = _puller(images, fake, f"{REGISTRY}/team/app:v1")
    assert puller.base == f"http://{REGISTRY}/v2/team/app"
    puller.resolve()
    lines = list(puller.run())
    assert [x["status"] for x in lines][-1].startswith("Status: Downloaded newer image for")
    image = images.lookup(f"{REGISTRY}/team/app:v1")
    assert image.id == image_id and image.rootfs is not None
    assert (image.rootfs / "f").read_bytes() == b"one" and (
        image.rootfs / "g"
    ).read_bytes() == b"two"
    assert image.repo_digests == [f"{REGISTRY}/team/app@{fake.tags['v1']}"]
    assert images.lookup(f"{REGISTRY}/team/app@{fake.tags['v1']}").id == image_id
    # a second pull downloads nothing: every blob is already stored
    fake.requests.clear()
    again = _puller(images, fake, f"{REGISTRY}/team/app:v1")
    again.resolve()
    assert list(again.run())[-1]["status"].startswith("Status: Image is up to date")
    assert not [u for u in fake.requests if "/blobs/" in u]


def test_pull_refuses_a_blob_with_another_digest(images: ImageStore, tmp_path: Path) -> None:
    oci_layout(tmp_path / "l", [{"f": b"one"}], cmd=["true"])
    fake = FakeRegistry(tmp_path / "l", "app", "v1")
    manifest = json.loads(fake.blobs[fake.tags["v1"]])
    fake.blobs[manifest["layers"][0]["digest"]] = b"tampered"
    puller = _puller(images, fake, f"{REGISTRY}/app:v1")
    puller.resolve()
    with pytest.raises(InvalidArgument, match="has another digest"):
        list(puller.run())
    with pytest.raises(NotFound):
        images.lookup(f"{REGISTRY}/app:v1")


def test_unknown_repository_and_http_errors(images: ImageStore, tmp_path: Path) -> None:
    puller = Puller(images, f"{REGISTRY}/nosuch:v1", (REGISTRY,))

    class Opener:
        def open(self, request: Any, timeout: float) -> Any:
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)  # type: ignore[arg-type]

    puller.opener = Opener()  # type: ignore[assignment]
    with pytest.raises(NotFound, match=r"pull access denied for 203\.0\.113\.1:5000/nosuch"):
        puller.resolve()


def test_choose_platform() -> None:
    from boxnet.image.config import host_arch

    mine = {
        "digest": "sha256:" + "1" * 64,
        "platform": {"os": "linux", "architecture": host_arch()},
    }
    other = {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "mips"}}
    assert choose_platform({"manifests": [other, mine]}, "x") is mine
    with pytest.raises(InvalidArgument, match=r"no linux/.* image in the index"):
        choose_platform({"manifests": [other]}, "x")


@pytest.mark.parametrize(
    ("domain", "insecure", "expected"),
    [
        ("203.0.113.1:5000", ("203.0.113.1:5000",), True),
        ("203.0.113.1:5000", ("203.0.113.0/24",), True),
        ("203.0.113.1:5000", (), False),
        ("localhost:5000", (), True),
        ("127.0.0.1:5000", (), True),
        ("registry.example", ("registry.example",), True),
        ("docker.io", (), False),
    ],
)
def test_insecure_registries(domain: str, insecure: tuple[str, ...], expected: bool) -> None:
    assert is_insecure(domain, insecure) is expected
