"""Container lifecycle: create, start, stop, kill, restart, rm, exec, and exit handling.

One daemon-wide lock serialises changes (each takes a few ms); waiting (stop timeouts, and
`wait` in core/waiting.py) happens on a Condition over that lock, so it never blocks other work.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from boxnet import faults
from boxnet.clock import ZERO_TIME, now_rfc3339
from boxnet.core import metrics, removal
from boxnet.core.etcfiles import etc_paths, write_etc_files
from boxnet.core.events import EventBus, container_attributes
from boxnet.core.execs import ExecRequest, ExecTable
from boxnet.core.image_defaults import apply_image
from boxnet.core.legacylinks import link_entries, link_env
from boxnet.core.procs import env_dict, generated_name, process_spec, signal_number
from boxnet.core.restarts import Restarts
from boxnet.core.sandbox import mode_kind
from boxnet.core.volumes import Volumes, with_volumes
from boxnet.core.watcher import ShimWatcher
from boxnet.errors import Conflict, InvalidArgument, NotFound, NotModified
from boxnet.model import Container, ContainerSpec, Endpoint, State
from boxnet.runtime import cgroups, images, launcher, procfs
from boxnet.txn import Undo

if TYPE_CHECKING:
    from boxnet.config import DaemonConfig
    from boxnet.core.dnshook import NameService
    from boxnet.core.networks import Networks
    from boxnet.core.sandbox import Sandboxes
    from boxnet.paths import Paths
    from boxnet.store.records import Records

log = logging.getLogger("boxnet.containers")

STOP_GRACE_AFTER_KILL = 10.0


class Containers:
    def __init__(
        self,
        paths: Paths,
        records: Records,
        networks: Networks,
        sandboxes: Sandboxes,
        config: DaemonConfig,
        lock: threading.RLock,
    ) -> None:
        self.paths = paths
        self.records = records
        self.networks = networks
        self.sandboxes = sandboxes
        self.config = config
        self.lock = lock
        self.changed = threading.Condition(lock)
        self.execs = ExecTable()  # pending and finished execs (core/execs.py)
        # Exit codes of containers removed on exit (--rm) or by rm -f, for a late `wait`.
        self.recent_exits: dict[str, tuple[int, float]] = {}
        # Containers rm -f removed whose shim has not exited yet -> their container.rm intent.
        self.removing: dict[str, int] = {}
        self.watcher = ShimWatcher(self._on_shim_exit)
        # The embedded resolver's hooks (core/dnshook.py), set by the controller.
        self.dns: NameService | None = None
        self.restarts = Restarts(self)  # --restart policies
        self.events = EventBus()  # GET /events (core/events.py)
        self.volumes = Volumes(paths.data_root / "volumes")  # local volumes (core/volumes.py)

    def event(self, c: Container, action: str, **extra: str) -> None:
        self.events.publish("container", action, c.id, container_attributes(c, extra))

    def network_event(self, action: str, network_id: str, c: Container) -> None:
        net = self.networks.by_id(network_id)
        name, driver = (net.name, net.driver) if net else ("", "")
        attrs = {"container": c.id, "name": name, "type": driver}
        self.events.publish("network", action, network_id, attrs)

    # -- lookup ---------------------------------------------------------------------------------
    def find(self, ref: str) -> Container:
        ref = ref.lstrip("/")
        # Indexed lookups (primary key, UNIQUE name, id range): no full scan per request.
        matches = self.records.find_containers(ref)
        exact = [c for c in matches if ref in (c.id, c.name)]
        if exact:
            return exact[0]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple containers match {ref}: use more of the id")
        raise NotFound(f"No such container: {ref}", hint="boxnet ps -a lists the containers")

    def all(self) -> list[Container]:
        return sorted(self.records.containers(), key=lambda c: c.created, reverse=True)

    def state_dir(self, container_id: str) -> Path:
        return self.paths.container_dir(container_id)

    def log_path(self, container_id: str) -> Path:
        return self.state_dir(container_id) / "container.log"

    # -- create ---------------------------------------------------------------------------------
    def create(self, spec: ContainerSpec, name: str | None) -> Container:
        from boxnet.parsing.names import validate_container_name

        with self.lock:
            image = images.lookup(self.paths, spec.image)  # unknown: NotFound, nothing created
            spec = apply_image(spec, image, spec.raw.get("Image") or spec.image)
            # Not 404s: clients take a create 404 for "no such image" and pull (docs/API.md).
            try:
                self._check_network_mode(spec)
            except NotFound as exc:
                raise InvalidArgument(exc.message, hint=exc.hint) from exc
            for target, _alias in spec.links if spec.network_mode == "bridge" else ():
                try:  # on a user network a link is a name the target may take later
                    self.find(target)
                except NotFound as exc:  # Docker's words for a --link target
                    message = f"could not get container for {target}"
                    raise InvalidArgument(message, hint=exc.hint) from exc
            container_id = secrets.token_hex(32)
            if name is None:
                name = generated_name({c.name for c in self.records.containers()})
            else:
                name = validate_container_name(name.lstrip("/"))
            spec = with_volumes(self, spec)
            c = Container(id=container_id, name=name, spec=spec, created=now_rfc3339())
            self.records.insert_container(c)
            try:
                self.state_dir(container_id).mkdir(parents=True, exist_ok=True)
            except OSError:
                self.records.delete_container(container_id)
                raise
            self.event(c, "create")
            return c

    def _check_network_mode(self, spec: ContainerSpec) -> None:
        kind = mode_kind(spec.network_mode)
        if kind == "container":
            target = spec.network_mode.split(":", 1)[1]
            if not target:
                raise InvalidArgument(
                    "invalid network mode container: (no container given)",
                    hint="use --net container:NAME",
                )
            self.find(target)
        elif kind == "network":
            try:
                net = self.networks.find(spec.network_mode)
            except NotFound as exc:
                if spec.network_mode == "bridge" and self.config.bridge == "none":
                    raise NotFound(
                        "network bridge not found: the default bridge is disabled"
                        " (boxnetd --bridge=none)",
                        hint="pass --network with a user network (boxnet network create NAME),"
                        " or --network none|host",
                    ) from exc
                raise NotFound(
                    f"network {spec.network_mode} not found",
                    hint="valid --net values: bridge, none, host, container:NAME, or the name of"
                    " a network (boxnet network ls)",
                ) from exc
            if not self.networks.driver_of(net).joinable:
                raise InvalidArgument(f"cannot use network {net.name} this way")
            for req in spec.endpoints:
                self.networks.find(req.network)

    # -- start ----------------------------------------------------------------------------------
    def start(
        self, ref: str, stdio_fds: tuple[int, int, int] | None = None, by_policy: bool = False
    ) -> Container:
        with self.lock:
            c = self.find(ref)
            if c.state == State.RUNNING:
                raise NotModified(f"container {c.name} is already running")
            if not by_policy:
                self.restarts.cancel(c.id)
            rootfs = self._rootfs(c)
            joined, etc_dir = self._joined_namespace(c)
            with Undo(f"start {c.short_id}") as undo:
                self.records.intents.begin("container.start", c.id, {"name": c.name}, undo)
                state_dir = self.state_dir(c.id)
                (state_dir / "exit.json").unlink(missing_ok=True)
                # The shim builds the container's root while we build its network below; it
                # joins the namespace and execs on go() (launcher.launch).
                spec = process_spec(c, rootfs, state_dir, self.log_path(c.id), stdio_fds)
                launched = launcher.launch(spec, state_dir, stdio_fds)
                undo.push("stop the shim", launched.abort)
                with metrics.timed("setup"):  # GET /boxnet/metrics, for bench/
                    result = self.sandboxes.setup(c, joined, undo)
                # container:X shares X's files as they are (X keeps its own hostname in them).
                etc_files = etc_paths(etc_dir) if etc_dir else self._write_etc(c, result.endpoints)
                serve_names = self.dns.attach(c, result.netns_path, undo) if self.dns else None
                with metrics.timed("go"):
                    launched.send_go(
                        result.netns_path or None,
                        {k: str(v) for k, v in etc_files.items()},
                        # legacy links' variables name addresses on c's networks, known now
                        env_dict((*link_env(self, c), *c.spec.env), tty=c.spec.tty),
                    )
                    if serve_names is not None:  # while the shim joins, mounts and execs
                        serve_names()
                    started = launched.finish()
                faults.point("container.start.shim")
                undo.commit()
            c = self.records.update_container(
                c,
                state=State.RUNNING,
                pid=started.pid,
                shim_pid=started.shim_pid,
                exit_code=0,
                started_at=now_rfc3339(),
                finished_at=ZERO_TIME,
                netns_path=result.netns_path,
                error="",
                manual_stop=False,
                restart_count=c.restart_count + 1 if by_policy else 0,
                paused=False,
            )
            faults.point("container.start.recorded")
            for endpoint in result.endpoints:
                self.network_event("connect", endpoint.network_id, c)
            self.event(c, "start")
            pidfd = started.shim_pidfd.detach() if started.shim_pidfd is not None else None
            if not self.watcher.watch(c.id, started.shim_pid, pidfd):
                # It already ended (a very short command): handle it now.
                threading.Thread(target=self._on_shim_exit, args=(c.id,), daemon=True).start()
            self.changed.notify_all()
            return c

    def _rootfs(self, c: Container) -> Path | None:
        """The image the container was created from (by id: a tag may have moved since)."""
        if c.spec.image_id:
            try:
                return images.ImageStore(self.paths).rootfs_of(c.spec.image_id)
            except NotFound:
                raise NotFound(
                    f"the image of container {c.name} ({c.spec.image}, {c.spec.image_id[:19]})"
                    " is gone",
                    hint=f"boxnet rm {c.name}, then create it again",
                ) from None
        return images.resolve(self.paths, c.spec.image)  # records from before image ids

    def _joined_namespace(self, c: Container) -> tuple[str, Path | None]:
        """For container:X, X's namespace path ('' = X runs in host mode) and its /etc dir."""
        if mode_kind(c.spec.network_mode) != "container":
            return "", None
        other = self.find(c.spec.network_mode.split(":", 1)[1])
        if other.state != State.RUNNING:
            raise Conflict(
                f"cannot join network of a non running container: {other.name}",
                hint=f"start it first: boxnet start {other.name}",
            )
        if other.netns_path == "":
            return "", self.state_dir(other.id) / "etc"
        return other.netns_path, self.state_dir(other.id) / "etc"

    def _write_etc(
        self, c: Container, endpoints: Sequence[Endpoint], in_place: bool = False
    ) -> dict[str, Path]:
        from boxnet.core.dnshook import uses_resolver

        return write_etc_files(
            self.state_dir(c.id) / "etc",
            c,
            endpoints,
            [str(s) for s in self.config.dns],
            list(self.config.dns_search),
            list(self.config.dns_opts),
            self._host_gateway(),
            host_mode=mode_kind(c.spec.network_mode) == "host",
            embedded_dns=self.dns is not None and uses_resolver(c),
            in_place=in_place,
            links=link_entries(self, c, strict=not in_place),
        )

    def refresh_etc(self, c: Container) -> None:
        """Hook for network connect/disconnect: c's addresses changed, so rewrite its
        /etc/hosts (in place: the container sees the files through bind mounts) and the
        resolver's names."""
        with self.lock:
            c = self.records.container(c.id) or c
            if self.dns is not None:
                self.dns.update(c)
            if c.state == State.RUNNING and mode_kind(c.spec.network_mode) == "network":
                self._write_etc(c, self.records.endpoints(container_id=c.id), in_place=True)

    def _host_gateway(self) -> IPv4Address | None:
        for net in self.networks.all():
            cfg = net.family(4) if net.name == "bridge" else None
            if cfg is not None and isinstance(cfg.gateway, IPv4Address):
                return cfg.gateway  # host-gateway in /etc/hosts: IPv4 like Docker's
        return None

    # -- exit -----------------------------------------------------------------------------------
    def _on_shim_exit(self, container_id: str) -> None:
        with self.lock:
            c = self.records.container(container_id)
            intent = removal.take_pending(self, container_id) if c is None else None
            if c is not None:
                self._exited(c)
        if intent is not None:  # removed by rm -f: what needed the processes gone goes now
            removal.finish_on_exit(self, container_id, intent)

    def _exited(self, c: Container) -> None:
        """The shim of a container still on record has exited (with the lock held)."""
        if c.state != State.RUNNING:
            return
        status = launcher.read_exit(Path(self.state_dir(c.id)))
        intent = self.records.intents.begin("container.stop", c.id, {"name": c.name})
        faults.point("container.exit.teardown")
        for endpoint in self.records.endpoints(container_id=c.id):
            self.network_event("disconnect", endpoint.network_id, c)
        with metrics.timed("teardown"):
            self.sandboxes.teardown(c)
        cgroups.remove(c.id)  # empty now: the PID namespace died with its PID 1
        if self.dns is not None:
            self.dns.detach(c.id)
        c = self.records.update_container(
            c,
            state=State.EXITED,
            exit_code=status.exit_code if status else 137,
            finished_at=status.finished_at if status else now_rfc3339(),
            pid=0,
            shim_pid=0,
        )
        self.records.intents.done(intent)
        self.event(c, "die", exitCode=str(c.exit_code))
        if c.spec.auto_remove:
            self.recent_exits[c.id] = (c.exit_code, time.monotonic())
            self._delete(c)
        else:
            self.restarts.on_exit(c)
        self.changed.notify_all()

    # -- stop / kill / restart ------------------------------------------------------------------
    def stop(self, ref: str, timeout: float | None) -> None:
        with self.changed:
            c = self.find(ref)
            if self.restarts.cancel(c.id):  # between two runs of its restart policy
                self.records.update_container(c, manual_stop=True)
            if c.state != State.RUNNING:
                raise NotModified(f"container {c.name} is not running")
            c = self.records.update_container(c, manual_stop=True)
            stop_signal = signal_number(c.spec.stop_signal or "SIGTERM")
            launcher.send_signal(c.pid, stop_signal)
            if c.paused:  # stopped processes see the signal once they run again
                procfs.signal_namespace(c.pid, signal.SIGCONT)
            if timeout is None:  # the container's --stop-timeout, else Docker's 10 s
                timeout = 10.0 if c.spec.stop_timeout is None else c.spec.stop_timeout
            grace = 1e9 if timeout < 0 else timeout  # -1: wait as long as it takes (Docker)
            self.event(c, "kill", signal=str(stop_signal))
            if not self._wait_stopped(c.id, grace):
                launcher.send_signal(c.pid, signal.SIGKILL)
                self.event(c, "kill", signal=str(int(signal.SIGKILL)))
                self._wait_stopped(c.id, STOP_GRACE_AFTER_KILL)
            self.event(c, "stop")

    def kill(self, ref: str, sig: str | int = "SIGKILL") -> None:
        with self.changed:
            c = self.find(ref)
            number = signal_number(sig)
            if self.restarts.cancel(c.id):
                self.records.update_container(c, manual_stop=True)
            if c.state != State.RUNNING:
                raise Conflict(f"Cannot kill container: {c.name}: container is not running")
            c = self.records.update_container(c, manual_stop=True)  # no restart policy after it
            launcher.send_signal(c.pid, number)
            self.event(c, "kill", signal=str(number))
            if number == signal.SIGKILL:  # Docker answers once the container is down
                self._wait_stopped(c.id, STOP_GRACE_AFTER_KILL)

    def restart(self, ref: str, timeout: float | None) -> None:
        with self.lock:
            c = self.find(ref)
            if c.state == State.RUNNING:
                self.stop(c.id, timeout)
            self.event(self.start(c.id), "restart")

    def _wait_stopped(self, container_id: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            c = self.records.container(container_id)
            if c is None or c.state != State.RUNNING:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.wait(min(left, 0.5))

    # -- remove (core/removal.py) ------------------------------------------------------------
    def remove(self, ref: str, force: bool) -> None:
        removal.remove(self, ref, force)

    def _delete(self, c: Container) -> None:
        removal.delete(self, c)

    # -- exec -----------------------------------------------------------------------------------
    def exec_create(
        self,
        ref: str,
        argv: tuple[str, ...],
        env: tuple[str, ...],
        workdir: str,
        tty: bool,
        stdin: bool = False,
        user: str = "",
        detach_keys: bytes = b"",
    ) -> str:
        with self.lock:
            c = self.find(ref)
            if c.state != State.RUNNING:
                raise Conflict(f"Container {c.id} is not running", hint=f"boxnet start {c.name}")
            if c.paused:
                raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
            if not argv:
                raise InvalidArgument("exec needs a command")
            exec_id = secrets.token_hex(32)
            # The container's user and working directory unless the exec names its own (Docker).
            workdir = workdir or c.spec.workdir or "/"
            self.execs.add(
                exec_id,
                ExecRequest(c.id, argv, env, workdir, tty, stdin, user or c.spec.user, detach_keys),
            )
            self.event(c, "exec_create: " + " ".join(argv), execID=exec_id)
            return exec_id

    def exec_start(self, exec_id: str, stdio_fds: tuple[int, int, int] | None) -> int:
        with self.lock:
            req = self.execs.take(exec_id)
            if req is None:
                raise NotFound(f"No such exec instance: {exec_id}")
            c = self.records.container(req.container_id)
            if c is None or c.state != State.RUNNING:
                raise Conflict("container is not running")
            pid = c.pid
            self.event(c, "exec_start: " + " ".join(req.argv), execID=exec_id)
        code = launcher.exec_in(
            pid,
            list(req.argv),
            env_dict((*c.spec.env, *req.env), tty=req.tty),  # the container's, then exec -e
            req.workdir,
            req.tty,
            stdio_fds,
            req.user,
        )
        self.event(c, "exec_die", execID=exec_id, exitCode=str(code))
        return code
