"""Container verbs beside the lifecycle: rename, pause/unpause, prune.

Pause has no cgroup freezer to use: every process of the container's PID namespace gets SIGSTOP
(unpause: SIGCONT). A process stopped this way is visible as such (state T in /proc), and a
`stop` of a paused container lets its processes run again to see the SIGTERM.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet.errors import Conflict, InvalidArgument
from boxnet.model import Container, State
from boxnet.parsing.names import validate_container_name
from boxnet.runtime import cgroups, procfs

if TYPE_CHECKING:
    from boxnet.core.containers import Containers


def rename(cs: Containers, ref: str, new_name: str) -> Container:
    with cs.lock:
        c = cs.find(ref)
        if not new_name.strip("/"):
            raise InvalidArgument("Neither old nor new names may be empty", hint="?name=NEW")
        new = validate_container_name(new_name.lstrip("/"))
        if new == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        taken = [x for x in cs.records.find_containers(new) if x.name == new]
        if taken:
            raise Conflict(
                f'Conflict. The container name "/{new}" is already in use by container'
                f' "{taken[0].id}". You have to remove (or rename) that container to be able'
                " to reuse that name.",
                hint="choose another name",
            )
        old = c.name
        c = cs.records.update_container(c, name=new)
        cs.refresh_etc(c)  # the embedded DNS answers the new name, no longer the old one
        cs.event(c, "rename", oldName="/" + old)
        return c


def update_restart(cs: Containers, ref: str, name: str, maximum: int) -> Container:
    """Docker's update --restart: the policy the next exit is judged by (the spec and the raw
    HostConfig that inspect echoes both change)."""
    from dataclasses import replace

    from boxnet.parsing import runflags

    with cs.lock:
        c = cs.find(ref)
        policy, retries = runflags.check_restart(name or "no", maximum)
        if policy != "no" and c.spec.auto_remove:
            raise InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
                hint="--rm and --restart do not go together",
            )
        raw = dict(c.spec.raw)
        host_config = dict(raw.get("HostConfig") or {})
        host_config["RestartPolicy"] = {"Name": policy, "MaximumRetryCount": retries}
        raw["HostConfig"] = host_config
        spec = replace(c.spec, restart_policy=policy, restart_max=retries, raw=raw)
        c = cs.records.update_container(c, spec=spec)
        cs.event(c, "update")
        return c


def update_limits(cs: Containers, ref: str, limits: dict[str, object]) -> Container:
    """Docker's update of resource limits: checked, written to a running container's cgroups,
    kept in its HostConfig (the next start applies them)."""
    from dataclasses import replace

    with cs.lock:
        c = cs.find(ref)
        raw = dict(c.spec.raw)
        host_config = {**(raw.get("HostConfig") or {}), **limits}
        cgroups.limit_files(host_config)
        if c.state == State.RUNNING:
            cgroups.update(c.id, host_config)
        raw["HostConfig"] = host_config
        c = cs.records.update_container(c, spec=replace(c.spec, raw=raw))
        cs.event(c, "update")
        return c


def pause(cs: Containers, ref: str) -> Container:
    with cs.lock:
        c = _running(cs, ref)
        if c.paused:
            raise Conflict(f"Container {c.id} is already paused", hint=f"boxnet unpause {c.name}")
        procfs.signal_namespace(c.pid, signal.SIGSTOP)
        c = cs.records.update_container(c, paused=True)
        cs.event(c, "pause")
        return c


def unpause(cs: Containers, ref: str) -> Container:
    with cs.lock:
        c = _running(cs, ref)
        if not c.paused:
            raise Conflict(f"Container {c.id} is not paused", hint=f"boxnet pause {c.name}")
        procfs.signal_namespace(c.pid, signal.SIGCONT)
        c = cs.records.update_container(c, paused=False)
        cs.event(c, "unpause")
        return c


def _running(cs: Containers, ref: str) -> Container:
    c = cs.find(ref)
    if c.state != State.RUNNING:
        raise Conflict(f"Container {c.id} is not running", hint=f"boxnet start {c.name}")
    return c


def prune(cs: Containers) -> tuple[list[str], int]:
    """Remove every container that is not running: (their ids, bytes of their state freed)."""
    deleted, freed = [], 0
    with cs.lock:
        for c in cs.all():
            if c.state == State.RUNNING:
                continue
            freed += disk_usage(cs, c)
            cs.remove(c.id, force=False)
            deleted.append(c.id)
    return deleted, freed


def disk_usage(cs: Containers, c: Container) -> int:
    """Bytes under the container's state directory (its writable layer, log, /etc files)."""
    return tree_bytes(cs.state_dir(c.id))


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under root (symlinks not followed)."""
    total = 0
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.lstat().st_size
        except OSError:
            continue
    return total
