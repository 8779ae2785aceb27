"""Issue 17's image part with the real docker CLI (Debian's 20.10, /usr/bin/docker) against
boxnetd: load, images, image inspect, tag, run, rmi, import, save, history, and a pull from
the lab's registry (docker-registry on the outside namespace, filled with skopeo). dockerd is
never started: only the client binary is used.

Observers: the CLI's exit codes, stdout and (empty) stderr; the id against the sha256 of the
config inside the saved tarball; what the containers print.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from boxnet.lab import Lab, basic_lab
from boxnet.lab.oci import busybox_layer, oci_layout, tar_directory
from boxnet.lab.registry import push_layout, start_registry

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"  # Debian's 20.10 CLI (a newer `docker` may shadow it on PATH)


def test_docker_cli_images(lab: Lab, tmp_path: Path) -> None:
    if not os.access(DOCKER, os.X_OK):
        pytest.skip(f"{DOCKER} missing: `make deb` installs docker.io (only its client is used)")
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host, "--insecure-registry", "203.0.113.1:5000")
    environ = {**os.environ, "DOCKER_HOST": f"unix://{d.socket}", "DOCKER_CONFIG": str(tmp_path)}

    def ok(*args: str) -> str:
        res = subprocess.run(
            [DOCKER, *args], env=environ, capture_output=True, text=True, timeout=60, check=False
        )
        assert (res.returncode, res.stderr) == (0, ""), f"docker {' '.join(args)}: {res}"
        return res.stdout

    image_id = oci_layout(
        tmp_path / "layout",
        [busybox_layer()],
        cmd=["sh", "-c", "echo hello from $PWD"],
        workdir="/tmp",
        ref_name="lab/oci:v1",
    )
    tarball = tar_directory(tmp_path / "layout", tmp_path / "oci.tar")
    assert ok("load", "-i", str(tarball)) == "Loaded image: lab/oci:v1\n"
    listing = ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").split("\n")
    assert f"lab/oci:v1 {image_id[7:19]}" in listing
    assert ok("image", "inspect", "--format", "{{.Id}}", "lab/oci:v1") == image_id + "\n"

    ok("tag", "lab/oci:v1", "mine:1")
    assert ok("run", "--rm", "mine:1") == "hello from /tmp\n"
    assert ok("rmi", "mine:1") == "Untagged: mine:1\n"

    saved = tmp_path / "saved.tar"
    ok("save", "-o", str(saved), "lab/oci:v1")
    with tarfile.open(saved) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["lab/oci:v1"]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image_id
    assert "layer 0" in ok("history", "lab/oci:v1")

    registry = start_registry(lab, basic.outside, "203.0.113.1")
    push_layout(basic.outside, tmp_path / "layout", f"{registry}/lab/bb:v1")
    pulled = ok("pull", f"{registry}/lab/bb:v1")
    assert pulled.endswith(f"{registry}/lab/bb:v1\n") and "Digest: sha256:" in pulled
    assert ok("run", "--rm", f"{registry}/lab/bb:v1") == "hello from /tmp\n"
    out = ok("rmi", "lab/oci:v1", f"{registry}/lab/bb:v1")
    assert out.split("\n")[-2] == f"Deleted: {image_id}"
    missing = subprocess.run(
        [DOCKER, "image", "inspect", image_id], env=environ, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "No such image" in missing.stderr

    # docker import -c ... FILE NAME: the body is the tarball, the answer the new id
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin/busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (rootfs / "bin/busybox").chmod(0o755)
    for d_ in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d_).mkdir()
    with tarfile.open(tmp_path / "rootfs.tar", "w") as tar:
        tar.add(rootfs, arcname=".")
    imported = ok("import", "-c", 'CMD ["/bin/busybox", "echo", "imported"]', "-c",
                  "ENV X=1", str(tmp_path / "rootfs.tar"), "imported:v1").strip()  # fmt: skip
    assert imported.startswith("sha256:")
    assert ok("image", "inspect", "--format", "{{.Id}}", "imported:v1").strip() == imported
    assert ok("run", "--rm", "imported:v1") == "imported\n"
