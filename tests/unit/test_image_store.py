"""The content-addressed image store (file system only): references, layers with whiteouts,
config merges, docker-save and OCI-layout archives, tags, rmi and prune semantics."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.image import archive, reference
from boxnet.image.config import RunDefaults, merge_command, merge_env
from boxnet.image.layers import apply_layer
from boxnet.lab.oci import layer_tar, oci_layout, tar_directory
from boxnet.paths import Paths
from boxnet.runtime.images import ImageStore


@pytest.fixture
def images(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(tmp_path / "data", tmp_path / "exec", tmp_path / "sock"))


@pytest.mark.parametrize(
    ("text", "canonical", "familiar"),
    [
        ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("alpine:3.10", "docker.io/library/alpine:3.10", "alpine:3.10"),
        ("library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("docker.io/library/alpine:latest", "docker.io/library/alpine:latest", "alpine:latest"),
        ("index.docker.io/team/app:v1", "docker.io/team/app:v1", "team/app:v1"),
        ("team/app", "docker.io/team/app:latest", "team/app:latest"),
        ("203.0.113.1:5000/busybox", "203.0.113.1:5000/busybox:latest",
         "203.0.113.1:5000/busybox:latest"),
        ("localhost/x/y:2", "localhost/x/y:2", "localhost/x/y:2"),
        ("registry.example/a", "registry.example/a:latest", "registry.example/a:latest"),
    ],
)  # fmt: skip
def test_reference_normalisation(text: str, canonical: str, familiar: str) -> None:
    ref = reference.parse_tagged(text)
    assert str(ref) == canonical
    assert ref.familiar() == familiar
    assert reference.familiar(canonical) == familiar


@pytest.mark.parametrize("text", ["Alpine", "a b", "x:", "x@sha256:12", ":tag", ""])
def test_reference_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        reference.parse(text)


def test_reference_with_digest() -> None:
    d = "sha256:" + "a" * 64
    ref = reference.parse(f"registry.example:5000/app@{d}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("registry.example:5000", "app", None, d)
    assert ref.tagged() is ref  # a digest needs no default tag


def _tar(entries: dict[str, bytes | str | None]) -> tarfile.TarFile:
    """name -> bytes (file), str (symlink target) or None (directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def test_layers_with_whiteouts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(
        _tar({"etc": None, "etc/a": b"1", "etc/b": b"2", "opt": None, "opt/old": b"o",
              "opt/sub": None, "opt/sub/x": b"x", "link": "etc/a", "gone": b"g"}),
        root,
    )  # fmt: skip
    hard = root / "etc/hard"
    os.link(root / "etc/b", hard)
    apply_layer(
        _tar({".wh.gone": b"", "etc/.wh.a": b"", "opt/new": b"n", "opt/.wh..wh..opq": b"",
              "etc/b": b"two", "link": b"now a file", "etc/c": None}),
        root,
    )  # fmt: skip
    assert not (root / "gone").exists() and not (root / "etc/a").exists()
    assert sorted(os.listdir(root / "opt")) == ["new"]  # opaque: the lower ones went, not this one
    assert (root / "etc/b").read_bytes() == b"two"
    assert hard.read_bytes() == b"2"  # replaced, not written through the shared inode
    assert not (root / "link").is_symlink() and (root / "link").read_bytes() == b"now a file"
    assert (root / "etc/c").is_dir()
    assert not [p for p in root.rglob(".wh.*")]
    apply_layer(_tar({"etc": b"a file replaces the directory"}), root)
    assert (root / "etc").is_file()


@pytest.mark.parametrize("name", ["d/.wh...", "d/.wh..", ".wh."])
def test_whiteouts_of_dot_entries_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(_tar({"d": None, "d/keep": b"k"}), root)
    with pytest.raises(InvalidArgument, match="a whiteout of"):
        apply_layer(_tar({name: b""}), root)
    assert (root / "d/keep").read_bytes() == b"k"


def test_layer_cannot_write_through_a_lower_symlink(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(_tar({"escape": str(tmp_path)}), root)
    with pytest.raises(InvalidArgument, match="unsafe tar member"):
        apply_layer(_tar({"escape/owned": b"x"}), root)
    assert not (tmp_path / "owned").exists()


def test_directory_entry_replaces_a_lower_symlink_never_touching_its_target(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(_tar({"lib": str(outside)}), root)  # an absolute link, as images have
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("lib")
        info.type, info.mode, info.uid = tarfile.DIRTYPE, 0o700, 4321
        tar.addfile(info)
    buf.seek(0)
    apply_layer(tarfile.open(fileobj=buf), root)
    assert (root / "lib").is_dir() and not (root / "lib").is_symlink()
    assert (outside.stat().st_mode & 0o777, outside.stat().st_uid) == (0o755, os.getuid())


def test_command_and_env_merge() -> None:
    d = RunDefaults(("/entry",), ("default",), ("PATH=/bin", "A=1"), "/w", "", ())
    assert merge_command(d, None, None) == ("/entry", "default")
    assert merge_command(d, None, ("x",)) == ("/entry", "x")
    assert merge_command(d, ("/other",), None) == ("/other",)  # the image's Cmd is dropped
    assert merge_command(d, (), None) == ("default",)  # --entrypoint ""
    assert merge_env(d.env, ("A=2", "B=3")) == ("PATH=/bin", "A=2", "B=3")


def test_builtins_have_stable_ids_and_configs(images: ImageStore, tmp_path: Path) -> None:
    busybox, host = images.lookup("busybox"), images.lookup("host")
    again = ImageStore(Paths(tmp_path / "other", tmp_path / "e2", tmp_path / "s2"))
    assert again.lookup("docker.io/library/busybox:latest").id == busybox.id
    assert again.lookup("host:latest").id == host.id
    assert hashlib.sha256(images.store.read_blob(busybox.id)).hexdigest() == busybox.hex
    assert busybox.config["config"]["Cmd"] == ["sh"] and host.rootfs is None
    assert images.lookup(busybox.hex[:10]).id == busybox.id  # id prefix
    assert images.lookup(busybox.id).id == busybox.id
    with pytest.raises(NotFound, match="No such image: nosuch"):
        images.lookup("nosuch")


def _docker_save_tar(images: ImageStore, names: list[str]) -> bytes:
    return b"".join(archive.save(images.store, images.for_save(names)))


def test_save_load_round_trip(images: ImageStore, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "bin").mkdir(parents=True)
    (src / "bin/tool").write_text("tool")
    made = images.import_image(src, "mine:v1")
    images.tag("mine:v1", "203.0.113.1:5000/team/mine:v2")
    data = _docker_save_tar(images, ["mine:v1"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["mine:v1"] and manifest[0]["Config"] == f"{made.hex}.json"
    other = ImageStore(Paths(tmp_path / "d2", tmp_path / "e2", tmp_path / "s2"))
    lines = archive.load(other.store, io.BytesIO(data), other.tag_loaded)
    assert lines == ["Loaded image: mine:v1"]
    loaded = other.lookup("mine:v1")
    assert loaded.id == made.id  # the id is the config's digest, the same everywhere
    assert loaded.rootfs is not None and (loaded.rootfs / "bin/tool").read_text() == "tool"


def test_load_oci_layout_with_an_index(images: ImageStore, tmp_path: Path) -> None:
    lower = {"etc": ("dir", ""), "etc/keep": b"k", "etc/drop": b"d"}
    upper = {"etc/.wh.drop": b"", "etc/new": b"n"}
    image_id = oci_layout(tmp_path / "layout", [lower, upper], cmd=["cat", "/etc/keep"],
                          workdir="/etc", ref_name="test/oci:v1", as_index=True)  # fmt: skip
    data = tar_directory(tmp_path / "layout", tmp_path / "oci.tar").read_bytes()
    lines = archive.load(images.store, io.BytesIO(data), images.tag_loaded)
    assert lines == ["Loaded image: test/oci:v1"]
    image = images.lookup("test/oci:v1")
    assert image.id == image_id and image.rootfs is not None
    assert sorted(os.listdir(image.rootfs / "etc")) == ["keep", "new"]
    assert image.config["config"]["WorkingDir"] == "/etc"
    assert image.layers[0].diff_size == len(layer_tar(lower))  # unpacked size, for history
    assert [layer.media_type for layer in image.layers] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ] * 2
    # saved in Docker's format, the gzip layers go out uncompressed under their diff ids
    data = _docker_save_tar(images, [image.id])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    for diff_id in image.config["rootfs"]["diff_ids"]:
        assert f"{diff_id.removeprefix('sha256:')}/layer.tar" in names


def test_load_refuses_a_tampered_blob(images: ImageStore, tmp_path: Path) -> None:
    oci_layout(tmp_path / "l", [{"f": b"original"}], ref_name="x/y:1")
    blobs = tmp_path / "l/blobs/sha256"
    for blob in blobs.iterdir():
        if blob.read_bytes()[:2] == b"\x1f\x8b":
            blob.write_bytes(layer_tar({"f": b"evil"}))
    data = tar_directory(tmp_path / "l", tmp_path / "l.tar").read_bytes()
    with pytest.raises(InvalidArgument, match="has digest"):
        archive.load(images.store, io.BytesIO(data), images.tag_loaded)
    with pytest.raises(NotFound):
        images.lookup("x/y:1")


def test_load_refuses_what_is_no_image_archive(images: ImageStore) -> None:
    with pytest.raises(InvalidArgument, match=r"neither manifest\.json"):
        archive.load(images.store, io.BytesIO(layer_tar({"f": b"x"})), images.tag_loaded)
    with pytest.raises(InvalidArgument, match="not a readable tarball"):
        archive.load(images.store, io.BytesIO(b"garbage" * 100), images.tag_loaded)


def test_rmi_semantics(images: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    image = images.import_image(tmp_path / "t", "a:1")
    images.tag("a:1", "b")
    users: list[str] = []
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        images.remove(image.id, False, lambda _id: users)
    assert images.remove("b", False, lambda _id: users) == [{"Untagged": "b:latest"}]
    users.append("c" * 64)
    with pytest.raises(Conflict, match=r"container cccccccccccc is using its referenced image"):
        images.remove("a:1", False, lambda _id: users)
    assert images.remove("a:1", True, lambda _id: users) == [{"Untagged": "a:1"}]
    assert images.store.exists(image.id)  # kept, dangling, for its container
    users.clear()
    assert images.prune(False, lambda _id: users) == {
        "ImagesDeleted": [{"Deleted": image.id}],
        "SpaceReclaimed": 0,
    }
    assert not images.store.exists(image.id) and not images.store.has_blob(image.id)


def test_reserved_names_and_legacy_adoption(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "data", tmp_path / "exec", tmp_path / "sock")
    old = paths.images / "oldimg" / "rootfs"
    old.mkdir(parents=True)
    (old / "hello").write_text("from before")
    inode = (old / "hello").stat().st_ino
    (paths.images / "busybox" / "rootfs").mkdir(parents=True)
    images = ImageStore(paths)
    rootfs = images.resolve("oldimg")
    assert rootfs is not None and (rootfs / "hello").read_text() == "from before"
    assert (rootfs / "hello").stat().st_ino == inode  # moved: a running overlay keeps its files
    assert not (paths.images / "oldimg").exists()
    assert (paths.images / "busybox" / "rootfs").is_dir()  # an old container may still use it
    with pytest.raises(Conflict, match="built in"):
        images.tag("oldimg", "busybox")
    with pytest.raises(Conflict, match="built in"):
        images.import_image(tmp_path / "data", "host:latest")
    images.tag("busybox", "busybox:mine")  # other tags of the built-ins are fine
    assert images.lookup("busybox:mine").id == images.lookup("busybox").id
    assert images.remove("busybox:mine", False, lambda _id: []) == [{"Untagged": "busybox:mine"}]
    with pytest.raises(Conflict, match="built in"):
        images.remove(images.lookup("busybox").id, True, lambda _id: [])


def test_load_refuses_a_built_in_name_before_storing_anything(
    images: ImageStore, tmp_path: Path
) -> None:
    oci_layout(tmp_path / "l", [{"f": b"x"}], ref_name="docker.io/library/busybox:latest")
    data = tar_directory(tmp_path / "l", tmp_path / "l.tar").read_bytes()
    images.lookup("busybox")
    ids, blobs = set(images.store.ids()), set(images.store.blobs.iterdir())
    with pytest.raises(Conflict, match="built in"):
        archive.load(images.store, io.BytesIO(data), images.tag_loaded)
    assert set(images.store.ids()) == ids and set(images.store.blobs.iterdir()) == blobs


def test_import_changes() -> None:
    from boxnet.image.changes import apply_changes

    config: dict[str, object] = {"config": {"Env": ["PATH=/bin", "A=0"]}}
    apply_changes(
        config,
        ['CMD ["cat", "/motd"]', "entrypoint /bin/tini --", "ENV A=1 B=\"two words\"",
         "ENV C 3", "EXPOSE 80 53/UDP", "LABEL tier=web", "WORKDIR /srv", "WORKDIR app",
         "USER nobody"],
    )  # fmt: skip
    assert config["config"] == {
        "Cmd": ["cat", "/motd"],
        "Entrypoint": ["/bin/sh", "-c", "/bin/tini --"],
        "Env": ["PATH=/bin", "A=1", "B=two words", "C=3"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Labels": {"tier": "web"},
        "WorkingDir": "/srv/app",
        "User": "nobody",
    }
    for bad in ("VOLUME /data", "RUN make", "EXPOSE 99999", "CMD", "LABEL =v"):
        with pytest.raises(InvalidArgument):
            apply_changes({}, [bad])


def test_concurrent_loads_of_one_image_agree(images: ImageStore, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    image_id = oci_layout(tmp_path / "l", [{"f": b"x" * 100_000}], ref_name="race/img:1")
    data = tar_directory(tmp_path / "l", tmp_path / "l.tar").read_bytes()
    with ThreadPoolExecutor(6) as pool:
        results = list(
            pool.map(lambda _: archive.load(images.store, io.BytesIO(data), images.tag_loaded),
                     range(6))
        )  # fmt: skip
    assert results == [["Loaded image: race/img:1"]] * 6
    assert images.lookup("race/img:1").id == image_id
    assert [i for i in images.store.ids() if i == image_id] == [image_id]
    leftovers = [p.name for d in (images.store.root, images.store.by_id, images.store.blobs)
                 for p in d.iterdir() if p.name.startswith(".")]  # fmt: skip
    assert leftovers == []
