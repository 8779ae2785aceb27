"""runtime/containerfs.py: paths resolve inside the container's root; diff of an upper layer."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from boxnet.runtime import containerfs


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hostname").write_text("box\n")
    (r / "tmp").mkdir()
    os.symlink("/etc", r / "tmp" / "abs")  # absolute: means the container's /etc
    os.symlink("../../../..", r / "tmp" / "up")  # climbs past the root: stops there
    os.symlink("loop", r / "tmp" / "loop")
    return r


def test_symlinks_and_dotdot_stay_inside_the_root(root: Path) -> None:
    assert containerfs.resolve(root, "/tmp/abs/hostname") == root / "etc" / "hostname"
    assert containerfs.resolve(root, "/../../etc/hostname") == root / "etc" / "hostname"
    assert containerfs.resolve(root, "/tmp/up/etc") == root / "etc"
    assert containerfs.resolve(root, "/tmp/abs", follow_last=False) == root / "tmp" / "abs"
    with pytest.raises(containerfs.PathError, match="too many levels"):
        containerfs.resolve(root, "/tmp/loop/x")


def test_extraction_refuses_members_leaving_the_directory(root: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../outside")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(containerfs.PathError, match="refused archive member"):
        containerfs.extract(buffer.getvalue(), root / "tmp", "/tmp")
    assert not (root / "outside").exists()


def test_stat_and_tar_round_trip(root: Path) -> None:
    info = containerfs.path_stat(root / "etc", "/etc/")
    assert info["name"] == "etc" and int(str(info["mode"])) & containerfs.GO_DIR
    link = containerfs.path_stat(root / "tmp" / "abs", "/tmp/abs")
    assert link["linkTarget"] == "/etc" and int(str(link["mode"])) & containerfs.GO_SYMLINK
    data = containerfs.tar_of(root / "etc", "/etc")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["etc", "etc/hostname"]


def test_changes_of_an_upper_layer(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "bin").mkdir(parents=True)
    (lower / "bin" / "ls").write_text("x")
    (upper / "bin").mkdir(parents=True)
    os.mknod(upper / "bin" / "ls", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
    (upper / "new.txt").write_text("y")
    found = {(c.path, c.kind) for c in containerfs.changes(upper, lower)}
    assert found == {("/bin", 0), ("/bin/ls", 2), ("/new.txt", 1)}
