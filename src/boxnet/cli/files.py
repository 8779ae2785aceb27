"""A container's files: `boxnet cp` (both ways, tar archives over the API) and `boxnet diff`."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

KINDS = {0: "C", 1: "A", 2: "D"}


def register(sub: Any) -> None:
    from boxnet.cli.main import verb

    p = verb(sub, "cp")
    p.add_argument("source", metavar="SRC", help="CONTAINER:PATH or a local path")
    p.add_argument("dest", metavar="DEST", help="a local path or CONTAINER:PATH")
    p.set_defaults(func=cmd_cp)
    p = verb(sub, "diff")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_diff)


def _path(name: str, suffix: str = "") -> str:
    from boxnet.cli.client import quote

    return f"/containers/{quote(name)}{suffix}"


def _split(spec: str) -> tuple[str, str] | None:
    """CONTAINER:PATH -> (container, path); None for a local path (`./a:b` is local)."""
    if spec.startswith(("/", ".")) or ":" not in spec:
        return None
    container, _, path = spec.partition(":")
    return container, path


def cmd_cp(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.errors import BoxnetError

    source, dest = _split(args.source), _split(args.dest)
    if (source is None) == (dest is None):
        raise BoxnetError(
            "copying between containers or between local paths is not supported",
            "one of SRC and DEST must be CONTAINER:PATH",
        )
    if source is not None:
        return _copy_out(ctx, *source, args.dest)
    assert dest is not None
    return _copy_in(ctx, args.source, *dest)


def _copy_out(ctx: Any, container: str, path: str, local: str) -> int:
    import io
    import os
    import shutil
    import tarfile
    import tempfile

    resp = ctx.client.request("GET", _path(container, "/archive"), None, {"path": path})
    with tarfile.open(fileobj=io.BytesIO(resp.body)) as tar:
        if os.path.isdir(local):
            tar.extractall(local, filter="tar")
            return 0
        # a new name: unpack beside it, then move the one entry into place
        parent = os.path.dirname(os.path.abspath(local))
        with tempfile.TemporaryDirectory(dir=parent) as scratch:
            tar.extractall(scratch, filter="tar")
            (entry,) = os.listdir(scratch)
            shutil.move(os.path.join(scratch, entry), local)
    return 0


def _copy_in(ctx: Any, local: str, container: str, path: str) -> int:
    import io
    import os
    import posixpath
    import tarfile

    from boxnet.errors import BoxnetError

    if not os.path.lexists(local):
        raise BoxnetError(f"no such file or directory: {local}")
    with ctx.client.send("HEAD", _path(container, "/archive"), None, {"path": path}) as conn:
        info = conn.read_head()  # a HEAD answer has no body, whatever its Content-Length
    if info.status >= 400 and info.status != 404:
        raise BoxnetError(f"cannot copy into {container}:{path}: the daemon answered {info.status}")
    if info.status == 200 and not path.endswith("/."):
        target_dir, arcname = path, os.path.basename(os.path.abspath(local))
        if not _is_dir(info.headers.get("x-docker-container-path-stat", "")):
            target_dir, arcname = posixpath.dirname(path) or "/", posixpath.basename(path)
    else:  # a new name in an existing directory
        target_dir, arcname = posixpath.dirname(path.rstrip("/")) or "/", posixpath.basename(path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(local, arcname=arcname)
    query = {"path": target_dir}
    with ctx.client.send(
        "PUT", _path(container, "/archive"), None, query, raw=buffer.getvalue()
    ) as conn:
        conn.read_response()  # raises the daemon's error
    return 0


def _is_dir(stat_header: str) -> bool:
    import base64
    import json

    try:
        return bool(json.loads(base64.b64decode(stat_header))["mode"] & (1 << 31))
    except (ValueError, KeyError, TypeError):
        return False


def cmd_diff(ctx: Any, args: argparse.Namespace) -> int:
    for change in ctx.client.call("GET", _path(args.container, "/changes")) or []:
        print(f"{KINDS.get(change.get('Kind'), '?')} {change.get('Path')}")
    return 0
