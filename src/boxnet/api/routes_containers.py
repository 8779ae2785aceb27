"""Container and exec routes (Docker Engine API), mapped onto the controller."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from boxnet.api import detach
from boxnet.api.logs import logs_response
from boxnet.api.server import Request, Response, Router
from boxnet.api.views import container_inspect, container_summary
from boxnet.core.create_request import parse_create
from boxnet.errors import InvalidArgument, NotFound, NotModified
from boxnet.model import State
from boxnet.parsing.body import Field

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def register(r: Router, ctl: Controller) -> None:
    c = ctl.containers

    def create(req: Request) -> Response:
        spec = parse_create(req.json())
        created = c.create(spec, req.query.get("name") or None)
        return Response(201, {"Id": created.id, "Warnings": []})

    def attach_start(req: Request) -> Response:
        target = c.find(req.params["id"])  # 404 before the 100 Continue
        fds = req.handler.receive_stdio()
        try:
            started = c.start(target.id, fds)
        finally:
            for fd in fds:
                os.close(fd)
        return Response(200, {"Id": started.id})

    def stop(req: Request) -> Response:
        timeout = stop_timeout(req)
        try:
            c.stop(req.params["id"], timeout)
        except NotModified:
            return Response(304)
        return Response(204)

    def restart(req: Request) -> Response:
        timeout = stop_timeout(req)
        c.restart(req.params["id"], timeout)
        return Response(204)

    def kill(req: Request) -> Response:
        c.kill(req.params["id"], req.query.get("signal") or "SIGKILL")
        return Response(204)

    def remove(req: Request) -> Response:
        target = c.find(req.params["id"])
        c.remove(target.id, req.flag("force"))
        if req.flag("v"):  # rm -v: the anonymous volumes no other container uses go too
            with c.lock:
                for b in target.spec.binds:
                    name = c.volumes.name_of(b.source)
                    if name and c.volumes.is_anonymous(name):
                        users = [
                            x.name for x in c.all() if b.source in (y.source for y in x.spec.binds)
                        ]
                        c.volumes.remove(name, users, force=True)
        return Response(204)

    def remove_link(req: Request) -> Response:
        """DELETE /containers/NAME/ALIAS?link=1: NAME forgets its legacy link ALIAS."""
        from dataclasses import replace

        if not req.flag("link"):
            raise InvalidArgument("a path NAME/ALIAS removes a link", hint="pass link=1")
        alias = req.params["alias"]
        with c.lock:
            target = c.find(req.params["id"])
            kept = tuple(x for x in target.spec.links if x[1] != alias)
            if len(kept) == len(target.spec.links):
                raise NotFound(f"Could not find link {alias} of container {target.name}")
            raw = dict(target.spec.raw)
            host_config = dict(raw.get("HostConfig") or {})
            host_config["Links"] = [f"/{n}:/{target.name}/{a}" for n, a in kept] or None
            raw["HostConfig"] = host_config
            spec = replace(target.spec, links=kept, raw=raw)
            c.refresh_etc(ctl.records.update_container(target, spec=spec))
        return Response(204)

    def listing(req: Request) -> Response:
        from boxnet.core.listfilters import select_containers

        now = time.time()
        text = req.query.get("limit") or "-1"
        try:
            limit = int(text)
        except ValueError:
            raise InvalidArgument(f"invalid limit {text!r}: expected a number") from None
        chosen = select_containers(ctl, req.query.get("filters"), req.flag("all"), limit)
        return Response(200, [container_summary(ctl, x, now) for x in chosen])

    def inspect(req: Request) -> Response:
        return Response(200, container_inspect(ctl, c.find(req.params["id"])))

    def logs(req: Request) -> Response:
        target = c.find(req.params["id"])
        if target.spec.log_max_size < 0:
            raise InvalidArgument(
                'configured logging driver does not support reading: "none" keeps no logs',
                hint="create the container with the json-file log driver to read its logs",
            )

        def running() -> bool:
            current = ctl.records.container(target.id)
            return current is not None and current.state == State.RUNNING

        return logs_response(c.log_path(target.id), target.spec.tty, req.query, running)

    def exec_create(req: Request) -> Response:
        raw = req.json()
        body = Field(raw)
        # Go's JSON is case-insensitive: docker-py sends detachKeys, the CLI DetachKeys.
        keys = raw.get("DetachKeys") or raw.get("detachKeys") if isinstance(raw, dict) else ""
        exec_id = c.exec_create(
            req.params["id"],
            body["Cmd"].strings(nul_free=True),
            body["Env"].strings(nul_free=True),
            body["WorkingDir"].text(nul_free=True),  # "": the container's
            body["Tty"].flag(),
            stdin=body["AttachStdin"].flag(),
            user=_exec_user(body["User"].text(nul_free=True)),
            detach_keys=detach.parse(keys if isinstance(keys, str) else ""),
        )
        return Response(201, {"Id": exec_id})

    def exec_attach_start(req: Request) -> Response:
        if c.execs.pending(req.params["id"]) is None:
            raise NotFound(f"No such exec instance: {req.params['id']}")
        fds = req.handler.receive_stdio()
        try:
            code = c.exec_start(req.params["id"], fds)
        finally:
            for fd in fds:
                os.close(fd)
        return Response(200, {"ExitCode": code})

    def exec_inspect(req: Request) -> Response:
        exec_id = req.params["id"]
        config = c.execs.config(exec_id)
        if config is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        code = c.execs.exit_code(exec_id)
        return Response(
            200,
            {
                "ID": exec_id,
                "ContainerID": config.container_id,
                "Running": code is None and c.execs.pending(exec_id) is None,
                "ExitCode": code,
                "OpenStdin": config.stdin,
                "OpenStdout": True,
                "OpenStderr": True,
                "ProcessConfig": {  # Docker's shape: docker-compose exec reads "tty"
                    "tty": config.tty,
                    "entrypoint": config.argv[0],
                    "arguments": list(config.argv[1:]),
                    "privileged": False,
                    "user": config.user,
                },
            },
        )

    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", listing)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/boxnet/containers/{id}/attach-start", attach_start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("DELETE", "/containers/{id}", remove)
    r.add("DELETE", "/containers/{id}/{alias}", remove_link)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("POST", "/containers/{id}/exec", exec_create)
    r.add("POST", "/boxnet/exec/{id}/attach-start", exec_attach_start)
    r.add("GET", "/exec/{id}/json", exec_inspect)


def stop_timeout(req: Request) -> float | None:
    """`?t=SECONDS` of stop and restart (absent: the container's default)."""
    text = req.query.get("t")
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise InvalidArgument(f"invalid t {text!r}: expected a number of seconds") from None
    if not -1 <= seconds <= 86400 * 365:  # also refuses nan and inf
        raise InvalidArgument(f"invalid t {text!r}: expected -1 to a year of seconds")
    return seconds


def _exec_user(text: str) -> str:
    from boxnet.parsing.runflags import parse_user

    return parse_user(text) if text else ""
