"""System routes: ping, version, info, metrics, gc, reload."""

from __future__ import annotations

import os
import platform
import socket
from typing import TYPE_CHECKING

from boxnet import API_VERSION, __version__
from boxnet.api.server import Request, Response, Router
from boxnet.model import State

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def register(r: Router, ctl: Controller) -> None:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

    def version(_req: Request) -> Response:
        details = {
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.24",
            "GitCommit": "",
            "GoVersion": "python" + platform.python_version(),
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": platform.release(),
            "Experimental": "false",
            "BuildTime": "",
        }
        return Response(
            200,
            {
                "Platform": {"Name": "boxnet"},
                # The CLI prints the Engine block of Components.
                "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
                "Version": __version__,
                **{k: v for k, v in details.items() if k != "Experimental"},
            },
        )

    def info(_req: Request) -> Response:
        all_c = ctl.records.containers()
        running = sum(1 for x in all_c if x.state == State.RUNNING)
        paused = sum(1 for x in all_c if x.state == State.RUNNING and x.paused)
        from boxnet.runtime import images

        return Response(
            200,
            {
                "ID": "",
                "Containers": len(all_c),
                "ContainersRunning": running - paused,  # Docker counts paused apart
                "ContainersPaused": paused,
                "ContainersStopped": len(all_c) - running,
                "Images": len(images.list_images(ctl.paths)),
                "Name": socket.gethostname(),
                "ServerVersion": __version__,
                "DockerRootDir": str(ctl.paths.data_root),
                "ExecRoot": str(ctl.paths.exec_root),
                "FirewallBackend": {
                    "Driver": ctl.firewall.name if ctl.firewall else "none",
                    # Docker's shape: Info is a list of [label, value] pairs.
                    "Info": [list(x) for x in ctl.firewall.details()] if ctl.firewall else [],
                },
                "IPv4Forwarding": ctl.config.ip_forward,
                "BridgeNfIptables": False,
                "KernelVersion": platform.release(),
                "OperatingSystem": "linux",
                "OSType": "linux",
                "Architecture": platform.machine(),
                "NCPU": os.cpu_count() or 1,
                "Debug": False,
                "ExperimentalBuild": False,
                "IndexServerAddress": "https://index.docker.io/v1/",
                "Driver": "overlay2",
                "LoggingDriver": "json-file",
                "CgroupDriver": "none",
                "DefaultRuntime": "boxnet",
                "Labels": [],
                "SecurityOptions": [],
                "Warnings": None,
                "Swarm": {
                    "NodeID": "",
                    "NodeAddr": "",
                    "LocalNodeState": "inactive",
                    "ControlAvailable": False,
                    "Error": "",
                    "RemoteManagers": None,
                },
            },
        )

    def system_gc(_req: Request) -> Response:
        with ctl.lock:
            return Response(200, ctl.reconciler.collect_garbage().to_json())

    def system_reload(_req: Request) -> Response:
        with ctl.lock:
            ctl.networks.sync_firewall()
        return Response(200, {})

    def metrics_get(_req: Request) -> Response:
        from boxnet.core import metrics

        return Response(200, metrics.snapshot())

    r.add("GET", "/boxnet/metrics", metrics_get)
    r.add("POST", "/boxnet/system/gc", system_gc)
    r.add("POST", "/boxnet/system/reload", system_reload)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
