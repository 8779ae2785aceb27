"""Small OCI image layouts for tests, built here from files on this machine (nothing from the
internet): one or more gzip layers, a config with Cmd/Env/WorkingDir, a manifest, index.json.

`oci_layout(dir, layers, ...)` writes the layout directory (what `skopeo copy oci:DIR ...` reads);
`tar_directory` packs it (what `docker load` reads).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any


def host_arch() -> str:
    """This machine's architecture in OCI's words (the lab imports no daemon code)."""
    import platform

    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


LayerFiles = dict[str, bytes | tuple[str, str]]  # path -> content, or ("symlink"|"dir", target)


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def layer_tar(files: LayerFiles) -> bytes:
    """An uncompressed layer: regular files (0755 when under bin/), symlinks, directories."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(content, tuple):
                kind, target = content
                if kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, target
                else:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.size = len(content)
            info.mode = 0o755 if "bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def busybox_layer(binary: Path = Path("/bin/busybox")) -> LayerFiles:
    """A minimal busybox root: the binary, sh and a few applets, the mount points."""
    files: LayerFiles = {d: ("dir", "") for d in ("bin", "etc", "proc", "sys", "dev", "tmp")}
    files["bin/busybox"] = binary.read_bytes()
    for applet in ("sh", "echo", "cat", "ls", "pwd", "env", "sleep", "wget", "ping", "test"):
        files[f"bin/{applet}"] = ("symlink", "busybox")
    files["etc/passwd"] = b"root:x:0:0:root:/root:/bin/sh\n"
    return files


def oci_layout(
    layout: Path,
    layers: list[LayerFiles],
    *,
    cmd: list[str] | None = None,
    entrypoint: list[str] | None = None,
    env: list[str] | None = None,
    workdir: str = "",
    exposed: list[str] | None = None,
    ref_name: str = "",
    as_index: bool = False,
) -> str:
    """Write an OCI layout; the image id (the config's digest)."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors, diff_ids = [], []
    for files in layers:
        raw = layer_tar(files)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        desc = _blob(layout, gzip.compress(raw, mtime=0))
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **desc})
    config = {
        "architecture": host_arch(),
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {
            "Env": env or ["PATH=/bin"],
            "Cmd": cmd,
            "Entrypoint": entrypoint,
            "WorkingDir": workdir,
            "ExposedPorts": {port: {} for port in exposed or []},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2026-01-02T03:04:05Z", "created_by": f"layer {i}"}
            for i in range(len(layers))
        ],
    }
    config_desc = _blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": descriptors,
    }
    top = {"mediaType": manifest["mediaType"], **_blob(layout, json.dumps(manifest).encode())}
    if as_index:  # a nested index with two platforms, as multi-arch images have
        other = dict(top, platform={"os": "linux", "architecture": "s390x-not-this"})
        mine = dict(top, platform={"os": "linux", "architecture": host_arch()})
        nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": [other, mine]}  # fmt: skip
        top = {"mediaType": nested["mediaType"], **_blob(layout, json.dumps(nested).encode())}
    if ref_name:
        top["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    index = {"schemaVersion": 2, "manifests": [top]}
    (layout / "index.json").write_text(json.dumps(index))
    return config_desc["digest"]


def tar_directory(directory: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(directory / name, arcname=name)
    return out
