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
import importlib.util
import json
import os
import py_compile
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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

SHIM_PATH = Path(__file__).with_name("shim.py")
ZYGOTE_PATH = Path(__file__).with_name("zygote.py")
SHIMIO_PATH = Path(__file__).with_name("shimio.py")  # loaded by the shim, from its bytecode
SHIMROOT_PATH = Path(__file__).with_name("shimroot.py")  # the same
READY_TIMEOUT = 10.0
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


def _write_spec(path: Path, spec: ProcessSpec, ready_fd: int) -> None:
    data = spec.to_json()
    data["ready_fd"] = ready_fd  # Popen keeps passed fds at their number: tell the shim which
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


def compiled(source: Path) -> str:
    """A stand-alone script as bytecode when possible: `python shim.py` recompiles it at every
    start (~3 ms of a ~12 ms start). Recompiled when the source is newer; else the source."""
    pyc = Path(importlib.util.cache_from_source(str(source)))
    try:
        if not pyc.exists() or pyc.stat().st_mtime < source.stat().st_mtime:
            py_compile.compile(str(source), cfile=str(pyc), doraise=True)  # atomic write
        return str(pyc)
    except (OSError, py_compile.PyCompileError):
        return str(source)


def shim_program() -> str:
    compiled(SHIMIO_PATH)  # the shim loads them from their bytecode when fresh
    compiled(SHIMROOT_PATH)
    return compiled(SHIM_PATH)


def _spawn(
    spec_path: Path, child_sock: socket.socket, stdio: Any, stderr: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", shim_program(), str(spec_path)],
        stdin=stdio[0],
        stdout=stdio[1],
        stderr=stderr,
        pass_fds=(child_sock.fileno(),),
        close_fds=True,
        start_new_session=True,
        cwd="/",
    )


class Zygote:
    """The daemon's end of the shim zygote (zygote.py): one idle interpreter that forks
    a shim per start (~1 ms) instead of a fresh `python shim.py` each time (~10 ms). Started on
    first use; when it is gone or misbehaves, `fork` returns None and the caller spawns a plain
    shim, so a broken zygote costs speed, never a start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _ensure(self, log_path: Path) -> socket.socket:
        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        compiled(SHIMIO_PATH)
        compiled(SHIMROOT_PATH)
        with theirs, open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                # The log path is only a label: the shims the zygote forks share its command
                # line, and tools (and the test labs' clean-up) find them by the exec root in it.
                [
                    sys.executable,
                    "-I",
                    "-S",
                    compiled(ZYGOTE_PATH),
                    str(theirs.fileno()),
                    str(SHIM_PATH),  # loads shimio from its bytecode, compiled here
                    str(log_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
                start_new_session=True,
                cwd="/",
            )
        ours.settimeout(READY_TIMEOUT)
        self._sock = ours
        return ours

    def fork(self, spec_path: Path, ready: socket.socket, stdio: tuple[int, int, int],
             log_path: Path) -> int | None:  # fmt: skip
        """The forked shim's PID, or None when the zygote cannot serve (spawn a plain shim)."""
        with self._lock:
            try:
                sock = self._ensure(log_path)
                socket.send_fds(sock, [str(spec_path).encode()], [ready.fileno(), *stdio])
                pid = int(sock.recv(32) or b"0")
            except (OSError, ValueError):
                self.close()
                return None
            return pid or None

    def close(self) -> None:
        """Hang up: the zygote sees EOF and exits (the shims it forked live on)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


ZYGOTE = Zygote()


def _fork_or_spawn(
    spec_path: Path, ready: socket.socket, stdio: Any, stderr: Any, log_dir: Path
) -> tuple[int, subprocess.Popen[bytes] | None]:
    """(shim PID, the Popen to wait for when it was spawned rather than forked)."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        fds = [null if x == subprocess.DEVNULL else x for x in (*stdio[:2], stderr)]
        fds = [x.fileno() if hasattr(x, "fileno") else int(x) for x in fds]
        pid = ZYGOTE.fork(spec_path, ready, (fds[0], fds[1], fds[2]), log_dir / "zygote.log")
    finally:
        os.close(null)
    if pid is not None:
        return pid, None
    proc = _spawn(spec_path, ready, stdio, stderr)
    return proc.pid, proc


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
    with parent_sock:
        spec_path = shim_state_dir / SPEC_FILE
        _write_spec(spec_path, spec, child_sock.fileno())
        stdio: Any = stdio_fds or (subprocess.DEVNULL, subprocess.DEVNULL, subprocess.DEVNULL)
        shim_log: IO[bytes] | None = None
        if stdio_fds is None:  # the shim's own tracebacks, if it ever crashes
            shim_log = open(shim_state_dir / "shim.log", "ab")
        try:
            first_pid, proc = _fork_or_spawn(
                spec_path, child_sock, stdio, shim_log or stdio[2], shim_state_dir.parent
            )
        finally:
            child_sock.close()
            if shim_log:
                shim_log.close()
        try:
            report = _read_report(parent_sock, time.monotonic() + READY_TIMEOUT)
        except KernelError:
            with contextlib.suppress(ProcessLookupError):  # shim and container share its group
                os.killpg(first_pid, signal.SIGKILL)
            raise
        finally:
            if proc is not None:
                proc.wait()  # the intermediate process exits as soon as the shim detached
        if report is None:
            raise KernelError(
                "the container shim exited without reporting",
                hint=f"see {shim_state_dir / 'shim.log'}",
            )
        if "error" in report:
            raise _failure(report, "start failed")
        # Hang up only once we hold pidfds: until then the shim keeps both PIDs from being reused.
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
            proc = _spawn(spec_path, child_sock, stdio, stdio[2])
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
