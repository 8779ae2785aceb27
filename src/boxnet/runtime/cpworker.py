"""`docker cp` for a container that is not running: a short-lived process mounts the container's
overlay (image + its writable layer) in a mount namespace of its own, copies, and exits, so the
mount goes with it and the daemon's namespace never sees it.

    python -m boxnet.runtime.cpworker get|put ROOTFS UPPER WORK PATH

get: stdout is one JSON line (the path's stat) then the tar; put: the tar is read from stdin.
Exit 2 with the reason on stderr when the path is not there (PathError); the daemon holds its
lock meanwhile, so the container cannot start on the same layer.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pathlib
import sys
import tempfile

from boxnet.runtime import containerfs
from boxnet.runtime.shim import MS_BIND, MS_PRIVATE, MS_REC, mount

CLONE_NEWNS = 0x00020000
MNT_DETACH = 2
PATH_ERROR = 2


def main(argv: list[str]) -> int:
    op, rootfs, upper, work, path = argv[:5]
    binds = json.loads(argv[5]) if len(argv) > 5 else []  # [[host source, container target]]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        print(f"unshare: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates back
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    root = tempfile.mkdtemp(prefix="boxnet-cp-")
    try:
        mount("overlay", root, "overlay", 0, f"lowerdir={rootfs},upperdir={upper},workdir={work}")
        for source, target in binds:
            point = containerfs.resolve(pathlib.Path(root), target)
            if os.path.isdir(source):
                os.makedirs(point, exist_ok=True)
                mount(source, str(point), None, MS_BIND | MS_REC)
        try:
            return _copy(op, root, path)
        finally:
            libc.umount2(os.fsencode(root), MNT_DETACH)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(root)


def _copy(op: str, root: str, path: str) -> int:
    from pathlib import Path

    try:
        if op == "get":
            host_path = containerfs.resolve(Path(root), path, follow_last=path.endswith("/"))
            info = containerfs.path_stat(host_path, path)
            data = containerfs.tar_of(host_path, path)
            sys.stdout.buffer.write(json.dumps(info).encode() + b"\n" + data)
        else:
            dest = containerfs.resolve(Path(root), path)
            if not dest.exists():
                raise containerfs.PathError(f"Could not find the file {path} in container")
            containerfs.extract(sys.stdin.buffer.read(), dest, path)
    except containerfs.PathError as exc:
        print(exc, file=sys.stderr)
        return PATH_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
