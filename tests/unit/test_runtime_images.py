"""Tar member safety, imports and the built-in images (file system only)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.paths import Paths
from boxnet.runtime.images import (
    BUSYBOX_BINARY,
    ImageStore,
    unsafe_member_reason,
)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(tmp_path / "data", tmp_path / "exec", tmp_path / "sock"))


def make_tar(path: Path, members: list[tarfile.TarInfo], compression: str = "") -> Path:
    with tarfile.open(path, f"w:{compression}") as tar:  # type: ignore[call-overload]
        for m in members:
            data = b"content of " + m.name.encode() if m.isreg() else b""
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data) if m.isreg() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


@pytest.mark.parametrize(
    ("m", "reason"),
    [
        (member("etc/passwd"), None),
        (member("./etc/passwd"), None),
        (member("bin/sh", tarfile.SYMTYPE, "/bin/busybox"), None),  # resolved in the container
        (member("/etc/passwd"), "absolute path"),
        (member("a/../../etc/passwd"), "'..' in path"),
        (member("x", tarfile.LNKTYPE, "/etc/shadow"), "hard link out of the image"),
        (member("x", tarfile.LNKTYPE, "../etc/shadow"), "hard link out of the image"),
    ],
)
def test_member_safety(m: tarfile.TarInfo, reason: str | None) -> None:
    assert unsafe_member_reason(m) == reason


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_import_tarball(store: ImageStore, tmp_path: Path, compression: str) -> None:
    tar = make_tar(
        tmp_path / "img.tar",
        [
            member("./", tarfile.DIRTYPE),
            member("bin", tarfile.DIRTYPE),
            member("bin/tool"),
            member("bin/sh", tarfile.SYMTYPE, "/bin/tool"),
            member("bin/hard", tarfile.LNKTYPE, "bin/tool"),
            member("dev/null", tarfile.CHRTYPE),  # skipped: the shim makes its own /dev
        ],
        compression,
    )
    info = store.import_image(tar, "img")
    rootfs = store.resolve("img")
    assert rootfs is not None and rootfs == info.rootfs
    assert (rootfs / "bin/tool").read_bytes() == b"content of bin/tool"
    assert os.readlink(rootfs / "bin/sh") == "/bin/tool"
    assert (rootfs / "bin/hard").stat().st_ino == (rootfs / "bin/tool").stat().st_ino
    assert not (rootfs / "dev/null").exists()
    assert info.tags == ["docker.io/library/img:latest"] and info.size > 0
    assert info.id.startswith("sha256:") and len(info.id) == 71
    tags = sorted(t for i in store.list_images() for t in i.tags)
    assert tags == [f"docker.io/library/{n}:latest" for n in ("busybox", "host", "img")]
    assert not [p for p in store.paths.images.iterdir() if p.name.startswith(".")]
    assert not [p for p in store.store.by_id.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "members",
    [
        [member("/abs")],
        [member("../escape")],
        # a symlink to the outside, then a file written "through" it
        [member("etc", tarfile.SYMTYPE, "/"), member("etc/boxnet-test-escape")],
        [member("etc", tarfile.SYMTYPE, "../../.."), member("etc/boxnet-test-escape")],
        # a hard link through a symlink would link a host file into the image
        [member("l", tarfile.SYMTYPE, "/etc"), member("h", tarfile.LNKTYPE, "l/passwd")],
        [member("p", tarfile.SYMTYPE, "/etc/passwd"), member("h", tarfile.LNKTYPE, "p")],
    ],
)
def test_import_refuses_unsafe_tarballs(
    store: ImageStore, tmp_path: Path, members: list[tarfile.TarInfo]
) -> None:
    tar = make_tar(tmp_path / "evil.tar", members)
    with pytest.raises(InvalidArgument, match="unsafe tar member"):
        store.import_image(tar, "evil")
    assert not Path("/boxnet-test-escape").exists()
    assert not Path("/etc/boxnet-test-escape").exists()
    with pytest.raises(NotFound):  # nothing half-imported
        store.resolve("evil")
    assert not [p for p in store.paths.images.iterdir() if p.name.startswith(".")]
    assert not list(store.store.blobs.iterdir())  # the refused layer's blob went too


def test_regular_file_replaces_a_symlink_instead_of_writing_through_it(
    store: ImageStore, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    tar = make_tar(tmp_path / "t.tar", [member("f", tarfile.SYMTYPE, str(victim)), member("f")])
    rootfs = store.import_image(tar, "t").rootfs
    assert rootfs is not None
    assert victim.read_text() == "untouched"
    assert (rootfs / "f").read_bytes() == b"content of f"


def test_import_directory(store: ImageStore, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "etc").mkdir(parents=True)
    (src / "etc/motd").write_text("hi")
    os.symlink("/etc/motd", src / "motd")
    os.mkfifo(src / "fifo")  # would block a naive copy
    os.chown(src / "etc/motd", 1234, 1234)
    rootfs = store.import_image(src, "tree").rootfs
    assert rootfs is not None
    assert (rootfs / "etc/motd").read_text() == "hi"
    assert (rootfs / "etc/motd").stat().st_uid == 1234
    assert os.readlink(rootfs / "motd") == "/etc/motd"
    assert not (rootfs / "fifo").exists()


def test_names_and_conflicts(store: ImageStore, tmp_path: Path) -> None:
    tar = make_tar(tmp_path / "a.tar", [member("f")])
    for builtin in ("host", "busybox"):
        with pytest.raises(Conflict):
            store.import_image(tar, builtin)
    # "app", not a hex name like "a": a name that is also a prefix of some image id may resolve to
    # that image, as in Docker.
    first = store.import_image(tar, "app")
    second = store.import_image(tar, "app")  # Docker's way: the tag moves to the new image
    assert store.lookup("app").id == second.id and store.store.get(first.id).tags == []
    with pytest.raises(InvalidArgument):
        store.import_image(tar, "Bad/Name")
    with pytest.raises(NotFound):
        store.import_image(tmp_path / "missing.tar", "b")
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tarball at all" * 100)
    with pytest.raises(InvalidArgument, match="not a readable tarball"):
        store.import_image(garbage, "g")
    assert store.remove("app", False, lambda _id: []) == [
        {"Untagged": "app:latest"},
        {"Deleted": second.id},
    ]
    with pytest.raises(NotFound, match="No such image: app") as err:
        store.resolve("app")
    assert err.value.hint and "boxnet images" in err.value.hint
    for builtin in ("host", "busybox"):
        with pytest.raises(Conflict, match="built in"):
            store.remove(builtin, True, lambda _id: [])


def test_host_image_has_no_rootfs(store: ImageStore) -> None:
    assert store.resolve("host") is None


@pytest.mark.skipif(not BUSYBOX_BINARY.exists(), reason="busybox-static not installed")
def test_busybox_built_once_and_atomically(store: ImageStore) -> None:
    rootfs = store.resolve("busybox")
    assert rootfs is not None
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"
    assert os.access(rootfs / "bin/busybox", os.X_OK)
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "var", "www"):
        assert (rootfs / d).is_dir(), d
    for f in ("hosts", "resolv.conf", "hostname"):
        assert (rootfs / "etc" / f).read_text() == ""
    assert (rootfs / "etc/passwd").read_text().startswith("root:x:0:0:")
    inode = rootfs.stat().st_ino
    assert store.resolve("busybox") == rootfs and rootfs.stat().st_ino == inode


def test_stale_build_dirs_of_dead_builders_are_removed(store: ImageStore, tmp_path: Path) -> None:
    store.store.by_id.mkdir(parents=True)
    stale = store.store.by_id / ".tmp-999999999-abc"  # no such PID
    (stale / "rootfs").mkdir(parents=True)
    for directory in (store.paths.images, store.store.blobs):
        directory.mkdir(parents=True, exist_ok=True)
    left = [store.paths.images / ".tmp-999999999-pull-x", store.store.blobs / ".tmp-999999999-y"]
    left[0].mkdir()
    left[1].write_bytes(b"half a blob")
    mine = store.store.blobs / f".tmp-{os.getpid()}-z"  # a live writer's: kept
    mine.write_bytes(b"")
    store.import_image(make_tar(tmp_path / "x.tar", [member("f")]), "x")
    assert not stale.exists() and not any(p.exists() for p in left) and mine.exists()
