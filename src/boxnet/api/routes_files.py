"""A container's files (Docker Engine API): GET/HEAD/PUT /containers/{id}/archive (`docker cp`)
and GET /containers/{id}/changes (`docker diff`). The work is runtime/containerfs.py's."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boxnet.api.server import Request, Response, Router
from boxnet.errors import BoxnetError, Conflict, InvalidArgument, NotFound
from boxnet.model import Container, State
from boxnet.runtime import containerfs, cpworker

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(r: Router, ctl: Controller) -> None:
    c = ctl.containers

    def wanted_path(req: Request) -> str:
        path = req.query.get("path", "")
        if not path:
            raise InvalidArgument("path is required", hint="?path=/ABSOLUTE/PATH")
        return path if path.startswith("/") else "/" + path

    def archive_get(req: Request) -> Response:
        target = c.find(req.params["id"])
        name = wanted_path(req)
        try:
            if target.state == State.RUNNING and target.pid > 0:
                root = Path(f"/proc/{target.pid}/root")  # as its processes see it, mounts too
                host_path = containerfs.resolve(root, name, follow_last=name.endswith("/"))
                info = containerfs.path_stat(host_path, name)
                body = b"" if req.method == "HEAD" else containerfs.tar_of(host_path, name)
            else:
                out = stopped_copy(target, "get", name, b"")
                head, _, body = out.partition(b"\n")
                info = json.loads(head)
                body = b"" if req.method == "HEAD" else body
        except containerfs.PathError as exc:
            raise NotFound(str(exc)) from None
        headers = {STAT_HEADER: base64.b64encode(json.dumps(info).encode()).decode()}
        return Response(200, body, content_type="application/x-tar", headers=headers)

    def archive_put(req: Request) -> Response:
        target = c.find(req.params["id"])
        name = wanted_path(req)
        try:
            if target.state == State.RUNNING and target.pid > 0:
                dest = containerfs.resolve(Path(f"/proc/{target.pid}/root"), name)
                if not dest.exists():
                    raise NotFound(f"Could not find the file {name} in container {target.name}")
                containerfs.extract(req.body, dest, name)
            else:
                stopped_copy(target, "put", name, req.body)
        except containerfs.PathError as exc:
            missing = str(exc).startswith("Could not find")
            raise (NotFound if missing else InvalidArgument)(str(exc)) from None
        return Response(200, b"", content_type="text/plain")

    def stopped_copy(target: Container, op: str, name: str, data: bytes) -> bytes:
        """The copy through runtime/cpworker.py, which mounts the container's layers."""
        with c.lock:  # the container cannot start on its layer meanwhile
            current = ctl.records.container(target.id) or target
            if current.state == State.RUNNING:
                raise Conflict(f"container {target.name} started meanwhile", hint="copy again")
            rootfs = c._rootfs(current)
            if rootfs is None:
                raise InvalidArgument(
                    f"container {target.name} runs on the host's file system (host image):"
                    " copy with the host's tools"
                )
            state = c.state_dir(target.id)
            argv = [sys.executable, "-m", "boxnet.runtime.cpworker", op, str(rootfs)]
            argv += [str(state / "upper"), str(state / "work"), name]
            # its binds and volumes, mounted as a start would (cp into a created container's
            # volume lands in the volume)
            argv.append(json.dumps([[b.source, b.target] for b in current.spec.binds]))
            done = subprocess.run(argv, input=data, capture_output=True, timeout=300, check=False)
        reason = done.stderr.decode(errors="replace").strip()
        if done.returncode == cpworker.PATH_ERROR:
            raise containerfs.PathError(reason)
        if done.returncode != 0:
            raise BoxnetError(f"copying files of container {target.name} failed: {reason}")
        return done.stdout

    def changes(req: Request) -> Response:
        target = c.find(req.params["id"])
        try:
            lower = c._rootfs(target)  # the image it was created from, by id
        except NotFound:
            lower = None  # image gone: every path in the layer counts as added
        upper = c.state_dir(target.id) / "upper"
        found = containerfs.changes(upper, lower)
        # Mount points the runtime made are not the process's changes (moby leaves them out
        # too), nor are the directories changed only by holding them.
        points = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys"}
        points |= {b.target for b in target.spec.binds} | set(target.spec.tmpfs)
        rest = [x for x in found if x.path not in points]

        def only_holds_points(x: Any) -> bool:
            inside = x.path.rstrip("/") + "/"
            return (x.kind == 0 and any(p.startswith(inside) for p in points)
                    and not any(y.path.startswith(inside) for y in rest))  # fmt: skip

        kept = [x for x in rest if not only_holds_points(x)]
        return Response(200, [{"Path": x.path, "Kind": x.kind} for x in kept] or None)

    def commit(req: Request) -> Response:
        """Docker's commit of a stopped container: its file system (image + writable layer,
        read through cpworker's overlay) imported as a one-layer image with its config."""
        import io

        from boxnet.runtime.images import ImageStore

        target = c.find(req.query.get("container", ""))
        if target.state == State.RUNNING:
            raise Conflict(
                f"cannot commit running container {target.name}: boxnet commits stopped"
                " containers only (it does not pause one to read its files)",
                hint=f"boxnet stop {target.name}, then commit",
            )
        _head, _, tar = stopped_copy(target, "get", "/", b"").partition(b"\n")
        repo, tag = req.query.get("repo", ""), req.query.get("tag", "")
        name = (f"{repo}:{tag}" if tag else repo) or None
        changes = [*commit_changes(target), *req.query_all.get("changes", [])]
        comment = req.query.get("comment", "") or f"commit of {target.name}"
        image = ImageStore(ctl.paths).import_image(io.BytesIO(tar), name, comment, changes=changes)
        ctl.events.publish("container", "commit", target.id, {"name": target.name})
        return Response(201, {"Id": image.id})

    r.add("POST", "/commit", commit)
    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("HEAD", "/containers/{id}/archive", archive_get)
    r.add("PUT", "/containers/{id}/archive", archive_put)
    r.add("GET", "/containers/{id}/changes", changes)


def commit_changes(c: Container) -> list[str]:
    """The container's settings as import changes (Dockerfile lines) for its committed image."""
    spec = c.spec
    out = [f"CMD {json.dumps(list(spec.cmd))}"] if spec.cmd else []
    for item in spec.env:
        key, sep, value = item.partition("=")
        if sep:
            out.append(f"ENV {key}={json.dumps(value)}")
    out += [f"WORKDIR {spec.workdir}"] if spec.workdir else []
    out += [f"USER {spec.user}"] if spec.user else []
    out += [f"EXPOSE {port}/{proto}" for port, proto in spec.exposed]
    out += [f"LABEL {k}={json.dumps(v)}" for k, v in spec.labels.items()]
    return out
