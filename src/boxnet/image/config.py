"""Image configs (the OCI / Docker image config JSON) and what a container takes from them.

The config's sha256 is the image id. boxnet writes configs canonically (sorted keys, no spaces)
so the configs it makes itself (built-ins, imports) get the same id every time; configs that
arrive (load, pull) are kept byte for byte, or their id would change.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from typing import Any

from boxnet.errors import InvalidArgument

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ZERO_TIME = "1970-01-01T00:00:00Z"


def host_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def rfc3339(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)) + f".{int(unix % 1 * 1e9):09d}Z"


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_config(
    diff_ids: list[str],
    created: str,
    *,
    cmd: list[str] | None = None,
    comment: str = "",
    created_by: str = "",
) -> dict[str, Any]:
    """A config for an image boxnet makes itself (import, built-ins)."""
    history: dict[str, Any] = {"created": created}
    if created_by:
        history["created_by"] = created_by
    if comment:
        history["comment"] = comment
    return {
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": {"Env": [DEFAULT_PATH], "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [history],
    }


def parse_config(data: bytes, what: str = "image config") -> dict[str, Any]:
    """A config as received: an object with rootfs.diff_ids (a list of sha256 digests)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"{what} is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what} is not a JSON object")
    rootfs = doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and d.startswith("sha256:") for d in diff_ids
    ):
        raise InvalidArgument(f"{what} has no rootfs.diff_ids list of sha256 digests")
    if not isinstance(doc.get("config") or {}, dict):
        raise InvalidArgument(f"{what}: config is not an object")
    return doc


@dataclass(frozen=True)
class RunDefaults:
    """What `create` takes from the image (Docker's merge of the image config into the
    request's)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    user: str
    exposed: tuple[str, ...]


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def run_defaults(config: dict[str, Any]) -> RunDefaults:
    c = config.get("config") or {}
    return RunDefaults(
        entrypoint=_strings(c.get("Entrypoint")),
        cmd=_strings(c.get("Cmd")),
        env=_strings(c.get("Env")),
        workdir=str(c.get("WorkingDir") or ""),
        user=str(c.get("User") or ""),
        exposed=tuple(str(k) for k in (c.get("ExposedPorts") or {})),
    )


def merge_env(image_env: tuple[str, ...], request_env: tuple[str, ...]) -> tuple[str, ...]:
    """The image's variables, each overridden by the request's of the same name."""
    names = {item.split("=", 1)[0] for item in request_env}
    return tuple(e for e in image_env if e.split("=", 1)[0] not in names) + request_env


def merge_command(
    defaults: RunDefaults,
    entrypoint: tuple[str, ...] | None,
    cmd: tuple[str, ...] | None,
) -> tuple[str, ...]:
    """Docker's rule: a request Entrypoint replaces the image's and drops its Cmd; a request
    Cmd replaces the image's Cmd. None = not given; () = given empty (`--entrypoint ""`)."""
    if entrypoint:
        return entrypoint + (cmd or ())
    base = defaults.entrypoint if entrypoint is None else ()
    return base + (cmd if cmd else defaults.cmd)
