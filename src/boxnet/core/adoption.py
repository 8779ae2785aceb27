"""A daemon restart: the containers that kept running while it was away are watched again, the
exits that happened meanwhile finished, and a start the dead daemon never recorded undone."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

from boxnet.core.procs import is_shim_of
from boxnet.model import Container, State
from boxnet.runtime import launcher

if TYPE_CHECKING:
    from boxnet.core.containers import Containers

log = logging.getLogger("boxnet.containers")


def _kill_unrecorded_process(containers: Containers, c: Container) -> None:
    """A daemon that died between starting a shim and recording it left a container running
    that no record owns: undo that start (the container's PID 1 dies, its shim follows)."""
    pid = launcher.read_pid(containers.state_dir(c.id))
    if pid and launcher.is_alive(pid) and is_shim_of(pid, c.id):
        log.warning("container %s was started by a daemon that died: stopping it", c.short_id)
        launcher.send_signal(pid, signal.SIGKILL)


def adopt(containers: Containers) -> tuple[int, int]:
    """Watch the shims of containers that kept running while the daemon was away; finish
    the exit of those that ended meanwhile. Returns (adopted, ended)."""
    adopted = ended = 0
    for c in containers.records.containers():
        if c.state != State.RUNNING:
            _kill_unrecorded_process(containers, c)
            continue
        if (
            c.shim_pid
            and launcher.is_alive(c.shim_pid)
            and containers.watcher.watch(c.id, c.shim_pid)
        ):
            adopted += 1
        else:
            containers._on_shim_exit(c.id)
            ended += 1
    return adopted, ended
