"""Looking into running containers: GET /containers/{id}/top and /containers/{id}/stats."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from boxnet.api import stats
from boxnet.api.attach import _hung_up
from boxnet.api.server import Request, Response, Router
from boxnet.errors import Conflict, InvalidArgument
from boxnet.model import Container, State
from boxnet.runtime import procfs

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

STATS_INTERVAL = 1.0  # seconds between streamed readings, Docker's
PRE_SAMPLE = 0.5  # seconds between the two readings of a one-time (stream=0) answer


def register(r: Router, ctl: Controller) -> None:
    c = ctl.containers

    def top(req: Request) -> Response:
        target = c.find(req.params["id"])
        if target.state != State.RUNNING:
            raise Conflict(
                f"Container {target.id} is not running", hint=f"boxnet start {target.name}"
            )
        ps_args = req.query.get("ps_args", "").strip()
        if ps_args in ("", "-ef"):
            procs = procfs.processes(target.pid)
            body = {"Titles": procfs.TOP_TITLES, "Processes": procfs.top_rows(procs)}
        else:
            body = ps_top(ps_args, procfs.namespace_pids(target.pid))
        return Response(200, body)

    def container_stats(req: Request) -> Response:
        target = c.find(req.params["id"])
        stream = req.query.get("stream", "1").lower() not in ("0", "false", "no")
        one_shot = req.flag("one-shot")
        if one_shot and stream:
            raise InvalidArgument("cannot have stream=true and one-shot=true")

        def current() -> Container:
            return ctl.records.container(target.id) or target

        if not stream:
            first = None if one_shot else stats.sample(current())
            if first is not None and first["pids_stats"]:  # running: a second reading to compare
                time.sleep(PRE_SAMPLE)
            return Response(200, stats.with_previous(stats.sample(current()), first))
        sock = req.handler.sock

        def body() -> Iterator[bytes]:
            previous: dict[str, Any] | None = None
            while True:
                now = current()
                reading = stats.with_previous(stats.sample(now), previous)
                yield json.dumps(reading).encode() + b"\n"
                if now.state != State.RUNNING:
                    return
                previous = reading
                deadline = time.monotonic() + STATS_INTERVAL
                while time.monotonic() < deadline:
                    if _hung_up(sock):
                        return
                    time.sleep(0.1)

        return Response(200, stream=body())

    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/stats", container_stats)


def ps_top(ps_args: str, pids: list[int]) -> dict[str, Any]:
    """Docker's way with ps_args: run `ps ARGS` on the host and keep the container's rows."""
    try:
        argv = ["ps", *shlex.split(ps_args)]
    except ValueError as exc:
        raise InvalidArgument(f"invalid ps_args {ps_args!r}: {exc}") from None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise InvalidArgument(
            f"ps {ps_args} failed: {done.stderr.strip() or done.returncode}",
            hint="give ps options, e.g. aux or -o pid,comm",
        )
    lines = done.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument(f"ps {ps_args}: no PID column", hint="add -o pid")
    at = titles.index("PID")
    wanted = {str(p) for p in pids}
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > at and fields[at] in wanted:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}
