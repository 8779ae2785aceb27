"""`rm` (DELETE /containers/ID): what a removal does, and what waits for the shim's exit.

`rm -f` of a running container does not wait for it to die (issue #20: the SIGKILL, the
kernel's teardown of its PID namespace and the shim's exit were ~4 ms of the ~10 ms the daemon
took). It sends SIGKILL, reports kill and die (exit code 137, as the exit would), and removes
the container at once: its published ports, its endpoints with their host veths set down (so
nothing of it answers on an address the next container may get), its addresses, its netns
file, its names and its record. What needs the processes gone, the cgroup and the state
directory (the shim writes exit.json there as it ends), goes when the shim exits
(`finish_on_exit`, from the watcher), and the container.rm intent stays open until then: a
daemon that dies in between finishes it at its next start (`finish_leftovers`).
"""

from __future__ import annotations

import shutil
import signal
import time
from typing import TYPE_CHECKING

from boxnet import faults
from boxnet.core import metrics
from boxnet.errors import Conflict
from boxnet.model import Container, State
from boxnet.runtime import cgroups, launcher

if TYPE_CHECKING:
    from boxnet.core.containers import Containers
    from boxnet.paths import Paths

RECENT_EXIT_SECONDS = 120.0  # how long `wait` still finds a removed container's exit code
KILLED_EXIT_CODE = 137  # 128 + SIGKILL, what the exit of a killed PID 1 reports


def remove(cs: Containers, ref: str, force: bool) -> None:
    with cs.changed:
        c = cs.find(ref)
        restarting = c.state != State.RUNNING and cs.restarts.pending(c.id)
        if c.state == State.RUNNING or (restarting and not force):
            if not force:  # moby's words, also while a restart is scheduled
                raise Conflict(
                    f"You cannot remove a {'restarting' if restarting else 'running'}"
                    f" container {c.id}. Stop the container before attempting removal or"
                    " force remove",
                    hint=f"boxnet rm -f {c.name}",
                )
            alive = launcher.send_signal(c.pid, signal.SIGKILL)  # False: already gone
            cs.event(c, "kill", signal=str(int(signal.SIGKILL)))
            cs.event(c, "die", exitCode=str(KILLED_EXIT_CODE))
            delete(cs, c, running=True, alive=alive)
            return
        delete(cs, c)


def delete(cs: Containers, c: Container, running: bool = False, alive: bool = False) -> None:
    """Remove a container. `running`: its exit was not handled (rm -f), so its teardown is
    done here as the exit would; `alive`: SIGKILLed but not gone yet (its shim's exit
    finishes the removal)."""
    # A row left by an exception or a crash is dropped at the next start; gc finishes the rm.
    cs.restarts.cancel(c.id)
    intent = cs.records.intents.begin("container.rm", c.id, {"name": c.name})
    faults.point("container.rm.teardown")
    if running:  # what the exit would have done first (core/containers.py _on_shim_exit)
        for endpoint in cs.records.endpoints(container_id=c.id):
            cs.network_event("disconnect", endpoint.network_id, c)
        with metrics.timed("teardown"):
            cs.sandboxes.teardown(c)
        if cs.dns is not None:
            cs.dns.detach(c.id)
    else:
        cs.sandboxes.teardown(c)
    if alive:
        cs.removing[c.id] = intent
    else:
        cgroups.remove(c.id)
    if cs.sandboxes.pipework is not None:
        cs.sandboxes.pipework.forget(c.id)
    cs.records.delete_container(c.id)
    if alive:
        faults.point("container.rm.forgotten")
    else:
        shutil.rmtree(cs.state_dir(c.id), ignore_errors=True)
        cs.records.intents.done(intent)
    cs.event(c, "destroy")
    if running:  # for a `wait` that comes late, as for --rm
        cs.recent_exits[c.id] = (KILLED_EXIT_CODE, time.monotonic())
    expire_recent(cs)


def take_pending(cs: Containers, container_id: str) -> int | None:
    """Under the containers' lock: the container.rm intent of a container `rm -f` removed while
    its shim ran, taken from `removing`; None if it was not being removed so."""
    return cs.removing.pop(container_id, None)


def finish_on_exit(cs: Containers, container_id: str, intent: int) -> None:
    """The shim of a container `rm -f` removed has exited: its cgroup and state directory go,
    and the removal's intent (take_pending) closes. Outside the containers' lock: nothing else
    owns this id's cgroup or directory (its record is gone, ids are never reused) and the store
    has its own lock, so the next create or start does not wait for the rmdirs and rmtree."""
    cgroups.remove(container_id)  # empty now: the PID namespace died with its PID 1
    shutil.rmtree(cs.state_dir(container_id), ignore_errors=True)
    cs.records.intents.done(intent)


def finish_leftovers(paths: Paths, container_id: str) -> str:
    """At start, for a container.rm intent whose record is gone: what its shim's exit would
    have removed (the shim and its container died with the SIGKILL before the restart)."""
    cgroups.remove(container_id)
    shutil.rmtree(paths.container_dir(container_id), ignore_errors=True)
    return "finished (cgroup and state directory removed)"


def expire_recent(cs: Containers) -> None:
    now = time.monotonic()
    for cid, (_code, when) in list(cs.recent_exits.items()):
        if now - when > RECENT_EXIT_SECONDS:
            del cs.recent_exits[cid]
