"""boxnet shim zygote: forks container shims from one idle interpreter.

Run by the daemon once as `python -I -S zygote.py FD SHIM_PATH LABEL [NETNS_DIR]`
(launcher.Zygote). A fresh interpreter costs ~10 ms of every container start, a fork of an idle one
~1 ms. The zygote loads shim.py once, then waits on the SOCK_SEQPACKET socket FD for "SPEC_PATH"
with four fds (ready socket, stdin, stdout, stderr), forks, answers the child's PID, and the child
becomes exactly the shim `python shim.py SPEC_PATH` would have been (new session, those fds, cwd /,
`shim.serve`). It exits when the daemon hangs up (EOF), so it never outlives the daemon; the shims
it forked detach (double fork) as always. LABEL is only a label: the shims share the zygote's
command line, and tools (and the test labs' clean-up) find them by the exec root in it. Stand-alone
like the shim: no boxnet imports.

With NETNS_DIR (the daemon's directory of namespace files), the zygote first makes a mount
namespace of its own without that directory's mounts: every container's PID 1 copies its shim's
mount namespace (unshare in shim.enter_run) and walks it twice (make-private, pivot_root's
detach), so with each container's netns bind mount in it a start cost more the more containers
ran (0.9 ms with none, 2.3 ms with 1,000). The namespace is a slave of the daemon's: the host's
other mounts, present and (where the host shares them) future, are seen as before.
"""

from __future__ import annotations

import _signal
import ctypes
import importlib.util
import os
import socket
import sys
from types import ModuleType
from typing import Any  # the zygote starts once: the import cost does not matter here


def load_shim(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("boxnet_shim", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the shim from {path}")
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)  # its __main__ guard keeps it from running
    return shim


def reap_children(_signum: int, _frame: Any) -> None:
    """Each child forks the real shim and exits at once: reap it (recv resumes after)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def become_shim(shim: ModuleType, spec_path: str, fds: list[int]) -> int:
    """In the forked child: the fds in place, then the shim's own code."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)  # the shim waits for its own child
    os.setsid()
    for target, fd in zip((0, 1, 2), fds[1:], strict=True):
        os.dup2(fd, target)
    for fd in fds[1:]:
        os.close(fd)
    os.chdir("/")
    return int(shim.serve(spec_path, ready_fd=fds[0]))


def serve_forks(sock: socket.socket, shim: ModuleType) -> int:
    for sig in shim.IGNORED:
        _signal.signal(sig, _signal.SIG_IGN)
    _signal.signal(_signal.SIGCHLD, reap_children)
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 4)
        if not msg:
            return 0  # the daemon hung up: it is gone or stopping
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            sock.send(b"0")
            continue
        pid = os.fork()
        if pid == 0:
            code = 125
            try:
                sock.close()
                code = become_shim(shim, msg.decode(), fds)
            except BaseException as e:
                os.write(2, f"boxnet shim: {type(e).__name__}: {e}\n".encode())
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        sock.send(str(pid).encode())


CLONE_NEWNS, MS_REC, MS_SLAVE, MNT_DETACH = 0x00020000, 16384, 1 << 19, 2


def leave_out_netns(netns_dir: str) -> None:
    """Our own mount namespace, a slave of the daemon's, without netns_dir's mounts: the
    directory is a mount of its own (kernel/netns.share_dir), detached here with everything
    below it, so the daemon's later namespace files cannot propagate into ours either; where it
    is not (an older daemon's directory still holding namespaces), each file is unmounted. Any
    failure leaves things as they were: slower starts, never a failed one."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return
    if libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        return
    path = os.fsencode(netns_dir)
    if libc.umount2(path, MNT_DETACH) == 0:
        return
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:  # not mounts (EINVAL) are left as they are
        libc.umount2(os.path.join(path, name), MNT_DETACH)


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    if len(sys.argv) > 4:
        leave_out_netns(sys.argv[4])
    return serve_forks(sock, load_shim(sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
