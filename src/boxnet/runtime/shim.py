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
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine)
SYS_MOUNT_SETATTR = 442  # same number on every architecture (added after the syscall unification)
AT_RECURSIVE, MOUNT_ATTR_RDONLY = 0x8000, 1
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
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
    from boxnet.runtime import shimio, shimroot
else:
    shimio = load_sibling("shimio")  # the container's output: relay and log
    shimroot = load_sibling("shimroot")  # bind mounts, read-only root, user, domain name


class SetupError(Exception):
    """A failure before exec: reported to the daemon with a stage and an exit code."""

    def __init__(self, stage: str, code: int, message: str) -> None:
        super().__init__(message)
        self.stage, self.code, self.message = stage, code, message


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err).lower()}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(src: str | None, tgt: str, fs: str | None, flags: int, data: str | None = None) -> None:
    ret = _libc.mount(_b(src), _b(tgt), _b(fs), ctypes.c_ulong(flags), _b(data))
    _check(ret, f"mount {fs or src} on {tgt}")


def make_readonly(path: str, recursive: bool) -> None:
    """Read-only mount (with every submount if recursive and the kernel has mount_setattr)."""
    if recursive:
        attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
        ret = _libc.syscall(SYS_MOUNT_SETATTR, -100, _b(path), AT_RECURSIVE, attr, 32)
        if ret == 0:
            return
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


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


# --- building the container's root (runs in PID 1, in its fresh mount namespace) --------------


def in_root(root: str, path: str) -> str:
    """`path` inside `root`, following symlinks as the container would (never out of root)."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        try:
            link = os.readlink("/".join([root, *done, part]))
        except OSError:  # not a symlink, or missing: keep the name as is
            done.append(part)
            continue
        hops += 1
        if hops > 40:
            raise OSError(errno.ELOOP, f"too many symlinks resolving {path}")
        if link.startswith("/"):
            done = []
        todo[:0] = [p for p in link.split("/") if p not in ("", ".")]
    return "/".join([root, *done])


def mount_point(root: str, name: str, writable: bool, is_dir: bool = True) -> str | None:
    """A mount target inside root, created when the root is writable; None if impossible."""
    path = in_root(root, name)
    if not os.path.lexists(path) and writable:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if is_dir:
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    return path if os.path.lexists(path) else None


def drop_nsfs(root: str) -> None:
    """Unmount namespace files (/run/netns/*) copied by the recursive bind of the host's /.

    Left there, the container's mount namespace would pin other containers' network namespaces.
    """
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    prefix = root + "/"
    for line in reversed(lines):
        fields = line.split(" ")
        sep = fields.index("-")
        parts = fields[4].split("\\")  # octal escapes: \040 for a space, \134 for "\\"...
        target = parts[0] + "".join(chr(int(p[:3], 8)) + p[3:] for p in parts[1:])
        if fields[sep + 1] == "nsfs" and target.startswith(prefix):
            _libc.umount2(_b(target), MNT_DETACH)


def build_root(spec: dict[str, Any]) -> str:
    root = os.path.realpath(os.path.join(spec["state_dir"], "rootfs"))  # as mountinfo shows it
    rootfs, upper, work = spec.get("rootfs"), spec.get("upper_dir"), spec.get("work_dir")
    writable = False
    if rootfs is None:  # the "host" image: the host's file system, read-only
        mount("/", root, None, MS_BIND | MS_REC)
        drop_nsfs(root)
        make_readonly(root, recursive=True)
    else:
        if upper and work:
            os.makedirs(upper, exist_ok=True)
            os.makedirs(work, exist_ok=True)
            opts = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
            try:
                mount("overlay", root, "overlay", 0, opts)
                writable = True
            except OSError:  # e.g. upper dir on a file system overlayfs refuses: run read-only
                pass
        if not writable:
            mount(rootfs, root, None, MS_BIND | MS_REC)
            make_readonly(root, recursive=False)
    spec["_writable"] = writable
    nosuid_nodev = MS_NOSUID | MS_NODEV
    for name, fstype, flags, data in (
        ("proc", "proc", nosuid_nodev | MS_NOEXEC, None),
        ("sys", "sysfs", nosuid_nodev | MS_NOEXEC | MS_RDONLY, None),
        ("dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k"),
        ("tmp", "tmpfs", nosuid_nodev, "mode=1777"),
    ):
        target = mount_point(root, name, writable)
        if target is None:
            raise OSError(errno.ENOENT, f"image has no /{name} to mount {fstype} on")
        try:
            mount(fstype, target, fstype, flags, data)
        except OSError as e:  # the host image in the host's netns: /sys already is this sysfs
            if e.errno != errno.EBUSY or rootfs is not None:
                raise
    dev = in_root(root, "dev")
    for node in DEV_NODES:
        os.close(os.open(f"{dev}/{node}", os.O_CREAT | os.O_WRONLY, 0o666))
        mount(f"/dev/{node}", f"{dev}/{node}", None, MS_BIND)
    os.mkdir(f"{dev}/pts", 0o755)
    os.mkdir(f"{dev}/shm", 0o1777)
    pts_opts = "newinstance,ptmxmode=0666,mode=0620,gid=5"
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts)
    mount("shm", f"{dev}/shm", "tmpfs", nosuid_nodev | MS_NOEXEC, "mode=1777")
    links = {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0"}
    links.update({"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"})
    for name, link in links.items():
        os.symlink(link, f"{dev}/{name}")
    for target, source in (spec.get("etc_files") or {}).items():
        path = mount_point(root, target, writable, is_dir=False)
        if path is not None:  # a read-only image without the file keeps its own (or none)
            mount(source, path, None, MS_BIND)
    shimroot.bind_mounts(root, spec, writable, globals())  # -v, --tmpfs: with our functions
    shimroot.make_root_readonly(root, spec, globals())
    return root


def enter_root(root: str) -> None:
    """pivot_root so the container's mount namespace holds no host mounts; chroot as fallback."""
    os.chdir(root)
    if SYS_PIVOT_ROOT is not None and _libc.syscall(SYS_PIVOT_ROOT, b".", b".") == 0:
        _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    else:
        os.chroot(".")
    os.chdir("/")


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
    enter_root(build_root(spec))
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
