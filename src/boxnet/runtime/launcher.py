"""Daemon side of the shim (`runtime/shim.py`): spawn it, read its readiness report, watch results.

Reaping: the shim detaches itself (double fork) as soon as it has read its spec, so init (or a
subreaper above the daemon) is its parent, never the daemon. A shim started by this daemon and
one adopted after a restart are therefore watched the same way (pidfd + `exit.json`), and no
reaper thread is needed. To make that race-free, the shim waits after its readiness report until
the daemon hangs up, and `start` opens the pidfds before hanging up: the shim cannot exit and have
its PID reused before the daemon holds a pidfd for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from boxnet.errors import BoxnetError, InvalidArgument, KernelError, NotFound
from boxnet.runtime.processes import (  # re-exported: callers know them as launcher.*
    EXIT_FILE as EXIT_FILE,
)
from boxnet.runtime.processes import (
    PID_FILE as PID_FILE,
)
from boxnet.runtime.processes import (
    ExitStatus as ExitStatus,
)
from boxnet.runtime.processes import (
    PidFd as PidFd,
)
from boxnet.runtime.processes import (
    is_alive as is_alive,
)
from boxnet.runtime.processes import (
    open_pidfd as open_pidfd,
)
from boxnet.runtime.processes import (
    read_exit as read_exit,
)
from boxnet.runtime.processes import (
    read_pid as read_pid,
)
from boxnet.runtime.processes import (
    send_signal as send_signal,
)
from boxnet.runtime.shimspawn import (  # re-exported: tests reach the zygote as launcher.ZYGOTE
    READY_TIMEOUT,
    fork_or_spawn,
    spawn,
)
from boxnet.runtime.shimspawn import (
    ZYGOTE as ZYGOTE,
)

SPEC_FILE = "spec.json"


class StartFailed(InvalidArgument):
    """The command could not be started (not found, not executable, bad working directory)."""

    def __init__(self, message: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code


class SetupFailed(KernelError):
    """Namespaces or mounts could not be set up for the container."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ProcessSpec:
    """What the shim runs; serialised as the JSON file the shim reads (see shim.py)."""

    container_id: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    hostname: str = ""
    workdir: str | None = "/"  # exec: None = the container's current directory
    rootfs: str | None = None  # None = the host image
    upper_dir: str | None = None
    work_dir: str | None = None
    netns_path: str | None = None  # None = stay in the daemon's network namespace
    etc_files: Mapping[str, str] = field(default_factory=dict)  # in-container path -> host file
    state_dir: str = ""
    log_path: str | None = None  # json-file log of the output (see shimio.py); "": none
    log_max_size: int = 0  # rotate past this many bytes (0: never)
    log_max_files: int = 1  # files kept, the current one included
    tty: bool = False
    stdio: bool = False
    open_stdin: bool = False  # detached: stdin is the FIFO state_dir/stdin (shimio.STDIN_FIFO)
    mode: str = "run"  # "run" | "exec"
    binds: tuple[tuple[str, str, bool], ...] = ()  # (host source, container target, read-only)
    user: str = ""  # UID[:GID] or NAME[:GROUP], resolved in the container (shimroot.py)
    group_add: tuple[str, ...] = ()  # supplementary groups: GIDs or names in its /etc/group
    read_only: bool = False  # the root file system read-only
    domainname: str = ""
    uts_host: bool = False  # share the host's UTS namespace (--uts host)
    init: bool = False  # Docker's --init: tini-static as PID 1, bound at /sbin/docker-init
    cgroups: tuple[str, ...] = ()  # cgroup v1 directories the command joins (runtime/cgroups.py)
    tmpfs: Mapping[str, str] = field(default_factory=dict)  # container path -> mount options
    target_pid: int | None = None  # exec: the container's PID 1 (host PID)

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.update(argv=list(self.argv), env=dict(self.env), etc_files=dict(self.etc_files))
        data["binds"] = [list(b) for b in self.binds]
        data["tmpfs"] = dict(self.tmpfs)
        data.update(group_add=list(self.group_add), cgroups=list(self.cgroups))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["argv"] = tuple(known.get("argv", ()))
        known["group_add"] = tuple(known.get("group_add", ()))
        known["cgroups"] = tuple(known.get("cgroups", ()))
        known["binds"] = tuple((str(a), str(b), bool(c)) for a, b, c in known.get("binds", ()))
        return cls(**known)


@dataclass(frozen=True)
class Started:
    shim_pid: int
    pid: int  # host PID of the container's PID 1
    # Opened while the shim still waited for us: they refer to these very processes, whereas a
    # later pidfd_open(shim_pid) could in theory hit a recycled PID. Use them to watch and signal.
    shim_pidfd: PidFd | None = None
    pidfd: PidFd | None = None


def _write_spec(path: Path, spec: ProcessSpec, ready_fd: int, deferred: bool = False) -> None:
    data = spec.to_json()
    data["ready_fd"] = ready_fd  # Popen keeps passed fds at their number: tell the shim which
    data["deferred"] = deferred  # wait for `go` on the ready socket (launch)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_report(sock: socket.socket, deadline: float) -> dict[str, Any] | None:
    buf = b""
    while b"\n" not in buf:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            raise KernelError(
                f"the container shim did not report within {READY_TIMEOUT:.0f}s",
                hint="the machine may be overloaded; the shim was killed",
            ) from None
        if not chunk:
            return None
        buf += chunk
    report: dict[str, Any] = json.loads(buf.split(b"\n", 1)[0])
    return report


def _failure(report: dict[str, Any], what: str) -> BoxnetError:
    message = f"{what}: {report['error']}"
    code = int(report.get("exit_code", 125))
    if report.get("stage") in ("exec", "workdir", "user"):
        hint = "check the command name and the image's PATH" if code == 127 else None
        return StartFailed(message, code, hint)
    return SetupFailed(message, code)


INIT_BINARIES = ("/usr/bin/tini-static", "/usr/bin/docker-init")  # static: any root runs them


def with_init(spec: ProcessSpec) -> ProcessSpec:
    """--init: a static tini, bound read-only at Docker's /sbin/docker-init, runs the command
    (reaps zombies, forwards signals)."""
    from dataclasses import replace

    binary = next((b for b in INIT_BINARIES if os.access(b, os.X_OK)), None)
    if binary is None:
        raise InvalidArgument(
            "--init needs a static init binary: none of " + ", ".join(INIT_BINARIES),
            hint="install Debian's tini package",
        )
    bind = (binary, "/sbin/docker-init", True)
    return replace(spec, binds=(*spec.binds, bind), argv=("/sbin/docker-init", "--", *spec.argv))


def start(
    spec: ProcessSpec, shim_state_dir: Path, stdio_fds: tuple[int, int, int] | None = None
) -> Started:
    """Start a container's shim; returns once the command is running (exec succeeded)."""
    return launch(spec, shim_state_dir, stdio_fds, deferred=False).finish()


def launch(
    spec: ProcessSpec,
    shim_state_dir: Path,
    stdio_fds: tuple[int, int, int] | None = None,
    deferred: bool = True,
) -> Launched:
    """Fork the container's shim and return at once. Deferred, the shim builds the container's
    root while the caller builds its network, and waits before joining the network namespace
    and exec'ing: `go(netns_path, etc_files)` lets it finish, `abort()` stops it. About 5 ms
    of a start overlap that way (the shim's forks and mounts with the veth, addresses, DNS)."""
    if spec.mode != "run" or not spec.argv or not spec.state_dir:
        raise InvalidArgument("start needs a run spec with a command and a state directory")
    if spec.stdio != (stdio_fds is not None):
        raise InvalidArgument("stdio_fds must be given exactly when spec.stdio is set")
    if not spec.stdio and spec.log_path is None:  # "" is the none log driver: nothing kept
        raise InvalidArgument("a detached container needs a log_path")
    if spec.init:
        spec = with_init(spec)
    shim_state_dir.mkdir(parents=True, exist_ok=True)
    state = Path(spec.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    for stale in (EXIT_FILE, PID_FILE):  # a restart must not read the previous run's results
        (state / stale).unlink(missing_ok=True)
    parent_sock, child_sock = socket.socketpair()
    try:
        spec_path = shim_state_dir / SPEC_FILE
        _write_spec(spec_path, spec, child_sock.fileno(), deferred)
        stdio: Any = stdio_fds or (subprocess.DEVNULL, subprocess.DEVNULL, subprocess.DEVNULL)
        shim_log: IO[bytes] | None = None
        if stdio_fds is None:  # the shim's own tracebacks, if it ever crashes
            shim_log = open(shim_state_dir / "shim.log", "ab")
        try:
            first_pid, proc = fork_or_spawn(
                spec_path, child_sock, stdio, shim_log or stdio[2], shim_state_dir.parent
            )
        finally:
            child_sock.close()
            if shim_log:
                shim_log.close()
    except BaseException:
        parent_sock.close()
        raise
    return Launched(parent_sock, first_pid, proc, shim_state_dir)


@dataclass
class Launched:
    """A shim forked by launch(): finish() (or go(), when deferred) waits for its report."""

    sock: socket.socket
    first_pid: int  # the shim and the container share its process group
    proc: subprocess.Popen[bytes] | None  # spawned rather than forked: reaped here
    shim_state_dir: Path
    finishing: bool = False  # go()/finish() called: the shim reports, abort() must not kill

    def go(
        self,
        netns_path: str | None,
        etc_files: Mapping[str, str],
        env: Mapping[str, str] | None = None,
    ) -> Started:
        """A deferred shim may finish: join netns_path (None: stay), bind etc_files, exec (with
        env instead of the spec's, when given). send_go + finish."""
        self.send_go(netns_path, etc_files, env)
        return self.finish()

    def send_go(
        self,
        netns_path: str | None,
        etc_files: Mapping[str, str],
        env: Mapping[str, str] | None = None,
    ) -> None:
        """go() without waiting: the caller may work while the shim finishes, then finish()
        (or abort(), which still stops it)."""
        update: dict[str, Any] = {"etc_files": dict(etc_files)}
        if env is not None:
            update["env"] = dict(env)
        line = f"go {json.dumps(update)}\n".encode()
        # The namespace goes as a descriptor: the shim's mount namespace predates its file.
        fds = [os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)] if netns_path else []
        try:
            # A shim that failed already has closed its end: its report is still there to read.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                socket.send_fds(self.sock, [line], fds)
        finally:
            for fd in fds:
                os.close(fd)

    def abort(self) -> None:
        """The start failed before go(): hang up (the shim stops before exec) and kill it."""
        self.sock.close()
        if self.finishing:  # it reported (or was killed by finish): nothing left to stop
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.first_pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def finish(self) -> Started:
        self.finishing = True
        with self.sock:
            try:
                report = _read_report(self.sock, time.monotonic() + READY_TIMEOUT)
            except KernelError:
                with contextlib.suppress(ProcessLookupError):  # shim and container share it
                    os.killpg(self.first_pid, signal.SIGKILL)
                raise
            finally:
                if self.proc is not None:
                    self.proc.wait()  # the intermediate process exits once the shim detached
            if report is None:
                raise KernelError(
                    "the container shim exited without reporting",
                    hint=f"see {self.shim_state_dir / 'shim.log'}",
                )
            if "error" in report:
                raise _failure(report, "start failed")
            # Hang up only once we hold pidfds: until then the shim keeps both PIDs unused.
            shim_pid, pid = int(report["shim_pid"]), int(report["pid"])
            shim_fd, fd = open_pidfd(shim_pid), open_pidfd(pid)
            return Started(
                shim_pid=shim_pid,
                pid=pid,
                shim_pidfd=None if shim_fd is None else PidFd(shim_fd),
                pidfd=None if fd is None else PidFd(fd),
            )


class ExecProcess:
    """A command running inside a container (see `spawn_exec`)."""

    def __init__(self, proc: subprocess.Popen[bytes], pid: int | None, error: str | None) -> None:
        self.proc = proc
        self.pid = pid  # host PID of the command; None if it could not start
        self.error = error  # why it could not start (also written to its stderr)

    def wait(self, timeout: float | None = None) -> int:
        code = self.proc.wait(timeout)
        return 128 - code if code < 0 else code  # the exec shim itself killed by a signal


def spawn_exec(
    target_pid: int,
    argv: list[str] | tuple[str, ...],
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    tty: bool = False,
    stdio_fds: tuple[int, int, int] | None = None,
    user: str = "",
) -> ExecProcess:
    """Run argv in every namespace (net, uts, ipc, pid, mnt) and the root of a running container."""
    if not argv:
        raise InvalidArgument("exec needs a command")
    if not is_alive(target_pid):
        raise NotFound(f"container process {target_pid} is not running")
    spec = ProcessSpec(
        container_id="",
        argv=tuple(argv),
        env=dict(env or {}),
        workdir=workdir,
        tty=tty,
        stdio=stdio_fds is not None,
        mode="exec",
        target_pid=target_pid,
        user=user,
    )
    parent_sock, child_sock = socket.socketpair()
    with parent_sock, tempfile.TemporaryDirectory(prefix="boxnet-exec-") as tmp:
        spec_path = Path(tmp) / SPEC_FILE
        _write_spec(spec_path, spec, child_sock.fileno())
        stdio: Any = stdio_fds or (subprocess.DEVNULL, subprocess.DEVNULL, subprocess.DEVNULL)
        try:
            proc = spawn(spec_path, child_sock, stdio, stdio[2])
        finally:
            child_sock.close()
        try:
            report = _read_report(parent_sock, time.monotonic() + READY_TIMEOUT)
        except KernelError:
            proc.kill()
            proc.wait()
            raise
    if report is None:
        proc.wait()
        raise KernelError("the exec shim exited without reporting")
    if "error" in report and report.get("stage") == "setup":
        proc.wait()
        raise _failure(report, "exec failed")
    return ExecProcess(proc, report.get("pid"), report.get("error"))


def exec_in(
    target_pid: int,
    argv: list[str] | tuple[str, ...],
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    tty: bool = False,
    stdio_fds: tuple[int, int, int] | None = None,
    user: str = "",
) -> int:
    """Run argv inside a container and wait: its exit code (127 not found, 126 not executable)."""
    return spawn_exec(target_pid, argv, env, workdir, tty, stdio_fds, user).wait()
