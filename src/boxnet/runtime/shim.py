"""boxnet container shim: joins/creates the namespaces, forks the container's PID 1, waits for it.

Run by the daemon as `python -I -S shim.py SPEC.json`, or forked by the zygote (zygote.py), which
loads this file once and calls `serve` in each child. Stand-alone on purpose: it imports
only cheap stdlib/builtin modules (no boxnet, no `json`/`signal`/`typing`, which pull in `re`/`enum`
and cost ~8 ms of start-up each), so that a container starts in a few milliseconds and an idle
shim stays small. The daemon's side of the protocol is `boxnet.runtime.launcher`.

Modes (spec "mode"):
- "run": detach from the daemon (double fork: init reaps us, so the daemon is never a zombie
  parent, whether it started us or adopted us after a restart), setns into the netns, unshare a
  PID namespace, fork PID 1, which makes its own mount/UTS/IPC namespaces, builds the root and
  execs. The parent reports {"pid", "shim_pid"} on the ready fd, waits for the daemon to hang up
  (so the daemon can open pidfds before any PID can be reused), copies the container's output
  to the attached client and the log (shimio.py) until PID 1 is gone, and writes exit.json.
- "exec": join every namespace of a running container, fork (the PID namespace applies to
  children only), exec, and exit with the command's exit code.
"""

from __future__ import annotations

import _json
import _signal
import ctypes
import errno
import fcntl
import marshal
import os
import sys
import time

MYPY = False
if MYPY:  # typing imports `re`; only the type checker needs it
    from typing import Any

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH, PR_SET_PDEATHSIG, PR_SET_NAME, TIOCSCTTY = 2, 1, 15, 0x540E
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Terminal/job-control noise must not kill the shim: the container's signals go straight to it.
IGNORED = [_signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGTSTP, _signal.SIGTTIN]
IGNORED += [_signal.SIGTTOU, _signal.SIGPIPE, _signal.SIGUSR1, _signal.SIGUSR2]

_libc = ctypes.CDLL(None, use_errno=True)
READY: int | None = None  # the fd the daemon reads our one-line report from


def load_sibling(name: str) -> Any:
    """A stand-alone helper next to this file (python -I puts no directory on sys.path), from
    the bytecode the launcher compiled if fresh (compiling would cost ms per start)."""
    here = os.path.dirname(os.path.abspath(__file__)).removesuffix("/__pycache__")
    source, module = f"{here}/{name}.py", type(sys)(name)
    cached = f"{here}/__pycache__/{name}.{sys.implementation.cache_tag}.pyc"
    try:
        if os.stat(cached).st_mtime < os.stat(source).st_mtime:
            raise OSError(errno.ESTALE, "stale bytecode")
        with open(cached, "rb") as f:
            code = marshal.loads(f.read()[16:])  # after the pyc header
    except (OSError, ValueError, EOFError):
        with open(source) as f:
            code = compile(f.read(), source, "exec")
    module.__file__ = source
    exec(code, module.__dict__)
    return module


if MYPY:
    from boxnet.runtime import shimfs, shimio, shimroot
else:
    shimio = load_sibling("shimio")  # the container's output: relay and log
    shimroot = load_sibling("shimroot")  # bind mounts, read-only root, user, domain name
    shimfs = load_sibling("shimfs")  # the container's root and mount helpers
    shimfs.shimroot = shimroot
_check, mount = shimfs._check, shimfs.mount


class SetupError(Exception):
    """A failure before exec: reported to the daemon with a stage and an exit code."""

    def __init__(self, stage: str, code: int, message: str) -> None:
        super().__init__(message)
        self.stage, self.code, self.message = stage, code, message


# --- JSON without the json package (its decoder imports `re`) --------------------------------


def loads(text: str) -> Any:
    hooks = {"object_hook": None, "object_pairs_hook": None, "parse_constant": float}
    context = type("Context", (), dict(hooks, strict=True, parse_float=float, parse_int=int))
    return _json.make_scanner(context())(text, 0)[0]


def dumps(obj: Any) -> str:
    if obj is None or isinstance(obj, bool):
        return {None: "null", True: "true", False: "false"}[obj]
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    return "{" + ", ".join(f"{dumps(k)}: {dumps(v)}" for k, v in obj.items()) + "}"


def wait_for_go(spec: dict[str, Any]) -> None:
    """A deferred start (launcher.launch): the daemon built the network while we built the
    root; it now sends one line on the ready socket, `go {"etc_files": ...}`, with the network
    namespace to join as a descriptor (by path it could not be opened: our mount namespace was
    copied before the daemon bind-mounted it), or hangs up (the start failed: nothing may run)."""
    import socket  # already loaded in the zygote

    sock = socket.socket(fileno=os.dup(spec["_go_fd"]))
    buf, netns_fd = b"", None
    try:
        while b"\n" not in buf:
            chunk, fds, _flags, _addr = socket.recv_fds(sock, 65536, 1)
            if fds:
                netns_fd = fds[0]
            if not chunk:
                raise SetupError("setup", 125, "start aborted by the daemon")
            buf += chunk
    finally:
        sock.close()
    line = buf.split(b"\n", 1)[0].decode()
    if not line.startswith("go "):
        raise SetupError("setup", 125, f"unexpected message from the daemon: {line[:40]!r}")
    spec.update(loads(line[3:]))
    if netns_fd is not None:
        _check(_libc.setns(netns_fd, CLONE_NEWNET), "setns into the container's network")
        os.close(netns_fd)


# --- the container's process, between fork and exec -----------------------------------------


def exec_command(argv: list[str], env: dict[str, str]) -> None:
    """Never returns: execs, or raises SetupError with Docker's wording and exit codes."""
    for sig in (*IGNORED, _signal.SIGXFSZ):  # ignored dispositions survive exec: restore them
        _signal.signal(sig, _signal.SIG_DFL)
    if not argv:
        raise SetupError("exec", 127, "exec: no command given")
    name = argv[0]
    try:
        if "/" in name:
            os.execve(name, argv, env)
        # Our own PATH search: os.execvpe imports `warnings`, unreachable after pivot_root.
        last: OSError = FileNotFoundError(errno.ENOENT, name)
        for directory in env["PATH"].split(":"):
            try:
                os.execve(f"{directory or '.'}/{name}", argv, env)
            except OSError as e:  # like execvp: the first other error wins over "not found"
                if last.errno == errno.ENOENT and e.errno not in (errno.ENOENT, errno.ENOTDIR):
                    last = e
        raise last
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        if e.errno == errno.ENOENT and "/" not in name:
            why = "executable file not found in $PATH"
        elif e.errno == errno.ENOENT:
            why = f"stat {name}: no such file or directory"
        else:
            why = os.strerror(e.errno or errno.EACCES).lower()
        raise SetupError("exec", code, f'exec: "{name}": {why}') from e


def command_env(spec: dict[str, Any], hostname: str) -> dict[str, str]:
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname)
    return env


def failed(stage: str, e: OSError, spec: dict[str, Any]) -> SetupError:
    """Docker's wording: setup failures exit 125, a bad working directory 126."""
    why = e.strerror or str(e)
    why = why[:1].lower() + why[1:]
    if stage == "workdir":
        return SetupError(stage, 126, f'chdir to cwd ("{spec.get("workdir")}") failed: {why}')
    return SetupError(stage, 125, why if e.filename is None else f"{why}: {e.filename}")


def enter_run(spec: dict[str, Any]) -> str:
    """PID 1 of a new container: own mount/UTS/IPC namespaces, its root. Returns the hostname."""
    uts = 0 if spec.get("uts_host") else CLONE_NEWUTS  # --uts host: the host's names, kept
    _check(_libc.unshare(CLONE_NEWNS | uts | CLONE_NEWIPC), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # first: nothing may propagate to the host
    hostname = shimroot.set_names(spec, _libc)
    if spec.get("deferred"):
        root = shimfs.prepare_root(spec)
        wait_for_go(spec)
        shimfs.finish_root(root, spec)
    else:
        root = shimfs.build_root(spec)
    shimfs.enter_root(root)
    return str(hostname)


def enter_exec(spec: dict[str, Any]) -> str:
    """An exec'd command (namespaces joined by the shim): the container's root; its hostname."""
    os.fchdir(spec["_root_fd"])
    os.chroot(".")  # a no-op after the container's pivot_root; needed if it fell back to chroot
    return os.uname().nodename


def child(spec: dict[str, Any], stdio: tuple[int, int, int] | None, enter: Any) -> None:
    """In the forked process, up to exec. Raises SetupError (reported through the pipe)."""
    stage = "setup"
    try:
        _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl")  # dies with its shim
        shimroot.join_cgroups(spec)  # resource limits from the first instruction on
        env = command_env(spec, enter(spec))
        stage = "user"
        shimroot.switch_user(spec, env)  # before chdir: the directory must be the user's to enter
        stage = "workdir"
        workdir = spec.get("workdir")  # a missing one was made with the root (shimroot)
        if workdir is None:  # exec without -w: where the container's PID 1 is
            os.fchdir(spec["_cwd_fd"])
        else:
            os.chdir(workdir)
        if stdio is not None:
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
        if spec.get("tty") and (stdio is None or stdio[0] == stdio[1]):
            os.setsid()  # a session of its own, with the terminal on fd 0 as controlling tty
            try:
                fcntl.ioctl(0, TIOCSCTTY, 0)
            except OSError:  # already some session's terminal: run without job control
                pass
        stage = "exec"
        exec_command(list(spec["argv"]), env)
    except OSError as e:
        raise failed(stage, e, spec) from e
    except shimroot.UserError as e:
        raise SetupError("user", 125, str(e)) from e


def fork_child(target: Any, *args: Any) -> tuple[int, int]:
    """Fork; the child runs target (which execs). Returns (pid, read end of the error pipe)."""
    err_r, err_w = os.pipe()  # close-on-exec: EOF without data means the exec succeeded
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        try:
            target(*args)
            failure = SetupError("exec", 127, "exec returned")
        except SetupError as e:
            failure = e
        except BaseException as e:
            failure = SetupError("setup", 125, f"{type(e).__name__}: {e}")
        os.write(err_w, f"{failure.stage}\n{failure.code}\n{failure.message}".encode())
        os._exit(failure.code)
    os.close(err_w)
    return pid, err_r


def read_failure(err_r: int) -> dict[str, Any] | None:
    data = b""
    while chunk := os.read(err_r, 4096):
        data += chunk
    os.close(err_r)
    if not data:
        return None
    stage, code, message = data.decode(errors="replace").split("\n", 2)
    return {"error": message, "exit_code": int(code), "stage": stage}


def wait_code(pid: int) -> int:
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as shells and Docker


def report(msg: dict[str, Any], wait_hangup: bool = False) -> None:
    """One JSON line to the daemon on the ready fd, then close it (only the first report counts)."""
    global READY
    if READY is None:
        return
    try:
        os.write(READY, (dumps(msg) + "\n").encode())
        while wait_hangup and os.read(READY, 64):  # the daemon hangs up once it holds pidfds
            pass
    except OSError:
        pass
    os.close(READY)
    READY = None


def null_stdio() -> None:
    """Drop our copies of the container's stdio, so readers see EOF when the container ends."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def run(spec: dict[str, Any]) -> int:
    if os.fork():
        os._exit(0)  # the daemon reaps this one at once; init adopts the real shim
    netns = spec.get("netns_path")
    if spec.get("deferred"):  # the child joins the namespace once the daemon made it
        spec["_go_fd"], netns = READY, None
    if netns:
        fd = os.open(netns, os.O_RDONLY)
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
        os.close(fd)
    # CLONE_NEWPID applies to the next fork, the container's PID 1. The mount namespace is
    # unshared in that child only: pivot_root would otherwise move the shim's root too.
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    state = spec["state_dir"]
    os.makedirs(os.path.join(state, "rootfs"), exist_ok=True)
    output = shimio.Output(spec)  # pipes or a pty: we copy the output to the client and the log
    if output.keys is not None:
        _signal.signal(_signal.SIGWINCH, output.copy_window_size)
    pid, err_r = fork_child(child, spec, output.stdio, enter_run)
    output.forked()
    failure = read_failure(err_r)
    if failure is None:
        shimio.write_atomic(os.path.join(state, "pid"), str(pid))
        report({"pid": pid, "shim_pid": os.getpid()}, wait_hangup=True)
    else:
        report(failure)
    output.relay()
    null_stdio()  # the client sees EOF now, and its `wait` answers once we exit
    code = wait_code(pid)
    result = {"ExitCode": code, "FinishedAt": shimio.rfc3339(time.time_ns()), "OOMKilled": False}
    result["Error"] = failure["error"] if failure else ""
    shimio.write_atomic(os.path.join(state, "exit.json"), dumps(result) + "\n")
    return 0


def exec_in(spec: dict[str, Any]) -> int:
    target = int(spec["target_pid"])
    nstypes = {"ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS, "net": CLONE_NEWNET, "pid": CLONE_NEWPID}
    nstypes["mnt"] = CLONE_NEWNS  # last: the /proc paths belong to the daemon's mount namespace
    try:
        fds = {ns: os.open(f"/proc/{target}/ns/{ns}", os.O_RDONLY) for ns in nstypes}
        spec["_root_fd"] = os.open(f"/proc/{target}/root", os.O_RDONLY | os.O_DIRECTORY)
        spec["_cwd_fd"] = os.open(f"/proc/{target}/cwd", os.O_RDONLY | os.O_DIRECTORY)
        spec["cgroups"] = shimroot.cgroups_of(target)  # the exec is limited as the container
    except OSError as e:
        report({"error": f"container process {target} is gone: {e}", "stage": "setup"})
        return 125
    stdio = None
    if not spec.get("stdio"):
        null = os.open("/dev/null", os.O_RDWR)
        stdio, spec["tty"] = (null, null, null), False
    for ns, nstype in nstypes.items():
        _check(_libc.setns(fds[ns], nstype), f"setns {ns} of {target}")
    pid, err_r = fork_child(child, spec, stdio, enter_exec)  # the PID namespace needs a fork
    failure = read_failure(err_r)
    if failure is not None:  # what `docker exec` prints too
        os.write(2, f"boxnet: {failure['error']}\n".encode())
    null_stdio()
    report(failure or {"pid": pid})
    return wait_code(pid)


def serve(spec_path: str, ready_fd: int | None = None) -> int:
    """Be the shim of the spec at spec_path; ready_fd overrides the spec's (zygote children)."""
    global READY
    with open(spec_path) as f:
        spec = loads(f.read())
    READY = ready_fd if ready_fd is not None else int(spec.get("ready_fd", 3))
    try:
        os.set_inheritable(READY, False)  # the container must not inherit it
    except OSError:
        READY = None  # started by hand: nobody to report to
    for sig in IGNORED:
        _signal.signal(sig, _signal.SIG_IGN)
    # `ps` and the daemon's adoption checks tell shims apart by this name (zygote children all
    # share the zygote's command line).
    _libc.prctl(PR_SET_NAME, ("bx-" + str(spec.get("container_id", ""))[:12]).encode(), 0, 0, 0)
    try:
        return exec_in(spec) if spec.get("mode") == "exec" else run(spec)
    except BaseException as e:
        report({"error": f"shim: {type(e).__name__}: {e}", "stage": "setup"})
        raise


def main() -> int:
    return serve(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
