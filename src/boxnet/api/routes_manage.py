"""Container housekeeping (Docker Engine API): rename, pause/unpause, update, prune, system df,
and the volume routes (local volumes, core/volumes.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boxnet.api.server import Request, Response, Router
from boxnet.api.views import container_summary
from boxnet.core import containerops
from boxnet.errors import InvalidArgument
from boxnet.parsing import filters as filter_parsing
from boxnet.parsing.body import Field
from boxnet.runtime import cgroups

if TYPE_CHECKING:
    from boxnet.core.containers import Containers
    from boxnet.core.controller import Controller
    from boxnet.model import Container


def volume_names(cs: Containers, c: Container) -> set[str]:
    """The volumes a container's binds come from."""
    return {n for b in c.spec.binds if (n := cs.volumes.name_of(b.source)) is not None}


# update's resource fields boxnet does not serve (runtime/cgroups.py has the ones it does).
UPDATE_REFUSED = ("BlkioWeight", "CpuRealtimePeriod", "CpuRealtimeRuntime", "KernelMemory")


def register(r: Router, ctl: Controller) -> None:
    c = ctl.containers

    def rename(req: Request) -> Response:
        containerops.rename(c, req.params["id"], req.query.get("name", ""))
        return Response(204)

    def pause(req: Request) -> Response:
        containerops.pause(c, req.params["id"])
        return Response(204)

    def unpause(req: Request) -> Response:
        containerops.unpause(c, req.params["id"])
        return Response(204)

    def update(req: Request) -> Response:
        target = c.find(req.params["id"])
        body = Field(req.json())
        asked = [k for k in UPDATE_REFUSED if body[k].value not in (None, 0, "", {}, [])]
        if asked:
            raise InvalidArgument(
                f"cannot update {', '.join(asked)} of container {target.name}: boxnet does not"
                " set these limits",
                hint="the restart policy, memory, CPU, cpuset and pids limits can be updated",
            )
        raw = req.json()
        limits = {k: v for k, v in (raw if isinstance(raw, dict) else {}).items()
                  if k in cgroups.FIELDS and v not in (None, 0, "", [])}  # fmt: skip
        if limits:
            containerops.update_limits(c, target.id, limits)
        policy = body["RestartPolicy"]
        if policy["Name"].text():  # the CLI sends an empty one with other updates
            name = policy["Name"].text()
            containerops.update_restart(
                c, target.id, name, policy["MaximumRetryCount"].integer(0, 10**6, 0)
            )
        return Response(200, {"Warnings": []})

    def container_prune(req: Request) -> Response:
        if req.query.get("filters", "").strip() not in ("", "{}"):
            raise InvalidArgument(
                "container prune filters are not supported", hint="prune without --filter"
            )
        deleted, freed = containerops.prune(c)
        return Response(200, {"ContainersDeleted": deleted, "SpaceReclaimed": freed})

    def system_df(_req: Request) -> Response:
        return Response(200, disk_usage(ctl))

    def volume_users(name: str) -> list[str]:
        return [x.name for x in c.all() if name in volume_names(c, x)]

    def volume_list(req: Request) -> Response:
        filters = filter_parsing.parse(req.query.get("filters"), ("name", "dangling", "driver"))
        names = set(filters.get("name", []))
        dangling = filters.get("dangling", [])
        found = []
        for v in c.volumes.all():
            if names and not any(n in v["Name"] for n in names):
                continue
            if dangling and (dangling[0] in ("1", "true")) == bool(volume_users(v["Name"])):
                continue
            found.append(v)
        return Response(200, {"Volumes": found, "Warnings": []})

    def volume_get(req: Request) -> Response:
        return Response(200, c.volumes.get(req.params["name"]))

    def volume_create(req: Request) -> Response:
        body = Field(req.json())
        view = c.volumes.create(
            body["Name"].text(nul_free=True),
            body["Labels"].string_map(),
            body["Driver"].text(),
            body["DriverOpts"].string_map(),
        )
        return Response(201, view)

    def volume_remove(req: Request) -> Response:
        name = req.params["name"]
        with c.lock:
            c.volumes.remove(name, volume_users(name), req.flag("force"))
        return Response(204)

    def volume_prune(_req: Request) -> Response:
        deleted = []
        with c.lock:
            used = {n for x in c.all() for n in volume_names(c, x)}
            for v in c.volumes.all():
                # Docker 23+ prunes anonymous volumes only (all=true for named ones too)
                if v["Name"] not in used and c.volumes.is_anonymous(v["Name"]):
                    c.volumes.remove(v["Name"], ())
                    deleted.append(v["Name"])
        return Response(200, {"VolumesDeleted": deleted, "SpaceReclaimed": 0})

    def build_prune(_req: Request) -> Response:
        # boxnet builds nothing: no cache to prune (`docker system prune` asks for it)
        return Response(200, {"CachesDeleted": [], "SpaceReclaimed": 0})

    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/update", update)
    r.add("POST", "/containers/prune", container_prune)
    r.add("GET", "/system/df", system_df)
    r.add("GET", "/volumes", volume_list)
    r.add("POST", "/volumes/create", volume_create)
    r.add("POST", "/volumes/prune", volume_prune)
    r.add("DELETE", "/volumes/{name}", volume_remove)
    r.add("GET", "/volumes/{name}", volume_get)
    r.add("POST", "/build/prune", build_prune)


def disk_usage(ctl: Controller) -> dict[str, Any]:
    """Docker's `GET /system/df`: images, containers with their writable layer's size."""
    from boxnet.api.image_views import image_summary
    from boxnet.runtime.images import ImageStore

    now = time.time()
    containers = []
    users: dict[str, int] = {}
    for x in ctl.containers.all():
        users[x.spec.image_id] = users.get(x.spec.image_id, 0) + 1
        summary = container_summary(ctl, x, now)
        size = containerops.disk_usage(ctl.containers, x)
        summary.update(SizeRw=size, SizeRootFs=size, Mounts=[])
        containers.append(summary)
    image_list = [
        image_summary(img, users.get(img.id, 0)) for img in ImageStore(ctl.paths).list_images()
    ]
    volumes = []
    for v in ctl.containers.volumes.all():  # Docker's df: each volume's size and users
        refs = sum(v["Name"] in volume_names(ctl.containers, x) for x in ctl.containers.all())
        size = containerops.tree_bytes(Path(v["Mountpoint"]))
        volumes.append({**v, "UsageData": {"Size": size, "RefCount": refs}})
    return {
        "LayersSize": sum(i["Size"] for i in image_list),
        "Images": image_list,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    }
