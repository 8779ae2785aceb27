"""The built-in images: `host` (no rootfs: the shim binds the host's / read-only) and `busybox`
(built on first use from the host's static busybox). Both have fixed configs and a reproducible
layer, so their ids are stable: the same busybox binary always gives the same busybox id."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from boxnet.errors import Conflict, Unavailable
from boxnet.image import reference
from boxnet.image.config import ZERO_TIME, canonical_bytes, new_config, rfc3339
from boxnet.image.layers import tar_tree
from boxnet.image.store import TMP_PREFIX, Layer, Store

HOST_IMAGE = "host"
BUSYBOX_IMAGE = "busybox"
BUSYBOX_BINARY = Path("/bin/busybox")
RESERVED_TAGS = {
    str(reference.parse_tagged(HOST_IMAGE)): HOST_IMAGE,
    str(reference.parse_tagged(BUSYBOX_IMAGE)): BUSYBOX_IMAGE,
}
TAR_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"

BUSYBOX_DIRS = [
    "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
    "var/tmp", "run", "home", "www",
]  # fmt: skip
BUSYBOX_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\n",
    # Empty placeholders: the shim bind-mounts the container's own files over them.
    "etc/hosts": "",
    "etc/resolv.conf": "",
    "etc/hostname": "",
}


def host_config() -> bytes:
    return canonical_bytes(
        new_config([], ZERO_TIME, cmd=["sh"], comment="boxnet built-in: the host's / read-only")
    )


def ensure_host(store: Store) -> str:
    image_id = store.add(host_config(), [], has_rootfs=False)
    _tag_if_missing(store, HOST_IMAGE, image_id)
    return image_id


def ensure_busybox(store: Store) -> str:
    ref = reference.parse_tagged(BUSYBOX_IMAGE)
    current = store.tags().get(str(ref))
    if current is not None and store.exists(current):
        return current
    if not BUSYBOX_BINARY.is_file():
        raise Unavailable(
            f"cannot build the busybox image: {BUSYBOX_BINARY} is missing",
            hint="apt-get install busybox-static",
        )
    store.root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-busybox-", dir=store.root))
    try:
        tree = work / "rootfs"
        fill_busybox(tree)
        diff_id, size = tar_tree(tree, work / "layer.tar")
        with (work / "layer.tar").open("rb") as f:
            store.put_blob_file(f, diff_id)
        # created: the binary's time (dpkg keeps the package's), so the id stays reproducible
        created = rfc3339(int(BUSYBOX_BINARY.stat().st_mtime))
        config = new_config(
            [diff_id], created, cmd=["sh"], created_by=f"boxnet built-in from {BUSYBOX_BINARY}"
        )
        image_id = store.add(
            canonical_bytes(config), [Layer(diff_id, TAR_MEDIA_TYPE, size, diff_id)]
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _tag_if_missing(store, BUSYBOX_IMAGE, image_id)
    return image_id


def builtin_ids(store: Store) -> set[str]:
    """Ids of the built-ins that exist (without building busybox)."""
    out = set()
    for key in RESERVED_TAGS:
        found = store.tags().get(key)
        if found is not None:
            out.add(found)
    return out


def check_not_reserved(ref: reference.Reference) -> None:
    name = RESERVED_TAGS.get(str(ref.tagged()))
    if name is not None:
        raise Conflict(
            f"image {name!r} is built in and cannot be replaced",
            hint=f"use another name or tag than {name}:latest",
        )


def _tag_if_missing(store: Store, name: str, image_id: str) -> None:
    ref = reference.parse_tagged(name)
    if store.tags().get(str(ref)) != image_id:
        store.set_tag(ref, image_id)


def fill_busybox(rootfs: Path) -> None:
    """The busybox tree, every time the same: fixed modes, owners and times (mtime 0)."""
    for d in BUSYBOX_DIRS:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
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
        (rootfs / rel).chmod(0o644)
    for directory, dirs, _files in os.walk(rootfs):
        for name in dirs:  # not the umask's modes: the id must not depend on it
            os.chmod(os.path.join(directory, name), 0o755)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "root").chmod(0o700)
    for directory, dirs, files in os.walk(rootfs, topdown=False):
        for name in [*dirs, *files]:
            os.utime(os.path.join(directory, name), (0, 0), follow_symlinks=False)
    os.utime(rootfs, (0, 0))
