"""Images as Docker's API shows them: the list summary, inspect and history."""

from __future__ import annotations

from typing import Any

from boxnet.clock import parse_rfc3339
from boxnet.image import reference
from boxnet.image.store import Image

CONFIG_KEYS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}  # fmt: skip


def created_unix(image: Image) -> int:
    try:
        return int(parse_rfc3339(str(image.config.get("created") or "")))
    except ValueError:
        return 0


def repo_tags(image: Image) -> list[str]:
    return [reference.familiar(t) for t in image.tags]


def repo_digests(image: Image) -> list[str]:
    return [reference.familiar(d) for d in image.repo_digests]


def labels(image: Image) -> dict[str, str]:
    return dict((image.config.get("config") or {}).get("Labels") or {})


def image_summary(image: Image, containers: int) -> dict[str, Any]:
    return {
        "Id": image.id,
        "ParentId": "",
        "RepoTags": repo_tags(image),
        "RepoDigests": repo_digests(image),
        "Created": created_unix(image),
        "Size": image.size,
        "VirtualSize": image.size,
        "SharedSize": -1,
        "Labels": labels(image),
        "Containers": containers,
    }


def image_inspect(image: Image) -> dict[str, Any]:
    config = {**CONFIG_KEYS, **(image.config.get("config") or {})}
    return {
        "Id": image.id,
        "RepoTags": repo_tags(image),
        "RepoDigests": repo_digests(image),
        "Parent": "",
        "Comment": _comment(image),
        "Created": str(image.config.get("created") or "1970-01-01T00:00:00Z"),
        "Container": "",
        "ContainerConfig": dict(CONFIG_KEYS),
        "DockerVersion": str(image.config.get("docker_version") or ""),
        "Author": str(image.config.get("author") or ""),
        "Config": config,
        "Architecture": str(image.config.get("architecture") or ""),
        "Variant": image.config.get("variant"),
        "Os": str(image.config.get("os") or ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {
            "Name": "boxnet",
            "Data": {"RootFS": str(image.rootfs) if image.rootfs else "/ (the host's, read-only)"},
        },
        "RootFS": {"Type": "layers", "Layers": list(image.config["rootfs"]["diff_ids"])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _comment(image: Image) -> str:
    history = image.config.get("history") or []
    return str(history[-1].get("comment") or "") if history else ""


def image_history(image: Image) -> list[dict[str, Any]]:
    """Newest first; the entries that made a layer get its size, the top one the image id."""
    history = [h for h in image.config.get("history") or [] if isinstance(h, dict)]
    sizes = [layer.diff_size or layer.size for layer in image.layers]  # unpacked, as Docker
    rows = []
    layer_index = 0
    for entry in history:
        size = 0
        if not entry.get("empty_layer") and layer_index < len(sizes):
            size, layer_index = sizes[layer_index], layer_index + 1
        rows.append(
            {
                "Id": "<missing>",
                "Created": int(parse_rfc3339(str(entry.get("created") or "")) or 0),
                "CreatedBy": str(entry.get("created_by") or ""),
                "Tags": None,
                "Size": size,
                "Comment": str(entry.get("comment") or ""),
            }
        )
    rows.reverse()
    if rows:
        rows[0]["Id"] = image.id
        rows[0]["Tags"] = repo_tags(image) or None
    return rows
