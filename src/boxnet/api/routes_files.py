"""A container's files (Docker Engine API): GET/HEAD/PUT /containers/{id}/archive (`docker cp`)
and GET /containers/{id}/changes (`docker diff`). The work is runtime/containerfs.py's."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet.api.server import Request, Response, Router
from boxnet.errors import Conflict, InvalidArgument, NotFound
from boxnet.model import Container, State
from boxnet.runtime import containerfs

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(r: Router, ctl: Controller) -> None:
    c = ctl.containers

    def root_of(target: Container) -> Path:
        """The container's root as its processes see it (mounts included)."""
        if target.state != State.RUNNING or target.pid <= 0:
            raise Conflict(
                f"copying files of container {target.name} needs it running"
                " (boxnet reads them through its processes' root)",
                hint=f"boxnet start {target.name}",
            )
        return Path(f"/proc/{target.pid}/root")

    def wanted_path(req: Request) -> str:
        path = req.query.get("path", "")
        if not path:
            raise InvalidArgument("path is required", hint="?path=/ABSOLUTE/PATH")
        return path if path.startswith("/") else "/" + path

    def archive_get(req: Request) -> Response:
        target = c.find(req.params["id"])
        name = wanted_path(req)
        try:
            host_path = containerfs.resolve(root_of(target), name, follow_last=name.endswith("/"))
            info = containerfs.path_stat(host_path, name)
            body = b"" if req.method == "HEAD" else containerfs.tar_of(host_path, name)
        except containerfs.PathError as exc:
            raise NotFound(str(exc)) from None
        headers = {STAT_HEADER: base64.b64encode(json.dumps(info).encode()).decode()}
        return Response(200, body, content_type="application/x-tar", headers=headers)

    def archive_put(req: Request) -> Response:
        target = c.find(req.params["id"])
        name = wanted_path(req)
        root = root_of(target)
        dest = containerfs.resolve(root, name)
        if not dest.exists():
            raise NotFound(f"Could not find the file {name} in container {target.name}")
        try:
            containerfs.extract(req.body, dest, name)
        except containerfs.PathError as exc:
            raise InvalidArgument(str(exc)) from None
        return Response(200, b"", content_type="text/plain")

    def changes(req: Request) -> Response:
        target = c.find(req.params["id"])
        try:
            lower = c._rootfs(target)  # the image it was created from, by id
        except NotFound:
            lower = None  # image gone: every path in the layer counts as added
        upper = c.state_dir(target.id) / "upper"
        found = containerfs.changes(upper, lower)
        return Response(200, [{"Path": x.path, "Kind": x.kind} for x in found] or None)

    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("HEAD", "/containers/{id}/archive", archive_get)
    r.add("PUT", "/containers/{id}/archive", archive_put)
    r.add("GET", "/containers/{id}/changes", changes)
