"""Network namespaces as files, without forking.

`unshare(CLONE_NEWNET)` and `setns()` change only the calling *thread*, so a short-lived thread can
create a namespace (and bind-mount it to a file) or open a netlink socket inside one, and then
exit: the daemon's own threads never change namespace, and no process is forked per step.

A thread and a setns cost ~0.2 ms, so `create_netns` can open, in the thread that made the
namespace, the sockets its caller will want in it (`prepare`): `netlink_socket_in` and
`socket_in` hand those out first. `delete_netns` closes any that were never asked for. The same
goes for a libnftables context (`netns_nft.nftables_in`): its netlink socket is opened when the
context is made, so it programs the namespace it was made in, from whichever thread later runs
commands.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from boxnet.errors import KernelError
from boxnet.kernel import fds, ifctl

CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = 0

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

SocketKind = tuple[int, int, int]  # (family, type, proto), as socket.socket() takes them
NETLINK: SocketKind = (socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
UDP: SocketKind = (socket.AF_INET, socket.SOCK_DGRAM, 0)
TCP: SocketKind = (socket.AF_INET, socket.SOCK_STREAM, 0)
# namespace file -> sockets opened in it at creation and not yet handed out
_spare: dict[str, list[tuple[SocketKind, socket.socket]]] = {}
# namespace file -> a libnftables context made in it at creation and not yet handed out
_spare_nft: dict[str, Any] = {}
# namespace file -> its net.ipv6.conf.default.disable_ipv6, opened in it at creation: a sysctl
# file is bound to its namespace when opened, so writing this fd later, from any thread, flips
# the default of that namespace (ipv6_born_on) without a thread and a setns (~0.3-2 ms).
_v6_default: dict[str, int] = {}
# namespace file -> what a caller readied in it before it had a file (Unbound.extras: the
# resolver's bound sockets, for one), by key, until taken (take_extra) or the namespace goes
_extras: dict[str, dict[str, Closable]] = {}
_spare_lock = threading.Lock()

T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a throwaway thread (whose namespace changes die with it)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="boxnet-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class Closable(Protocol):
    def close(self) -> None: ...


@dataclass
class Unbound:
    """A namespace made by make_unbound and what was opened in it, held by a descriptor until
    bind_unbound gives it its file (or close() lets it go)."""

    fd: int
    spares: list[tuple[SocketKind, socket.socket]] = field(default_factory=list)
    nft: Any = None
    v6_default: int | None = None
    extras: dict[str, Closable] = field(default_factory=dict)  # see _extras

    def close(self) -> None:
        for extra in self.extras.values():
            extra.close()
        self.extras = {}
        for _kind, sock in self.spares:
            sock.close()
        for fd in (self.fd, self.v6_default):
            if fd is not None and fd >= 0:
                os.close(fd)
        # Closed once: a second close() must not hit descriptor numbers reused since.
        self.fd, self.spares, self.nft, self.v6_default = -1, [], None, None


def make_unbound(prepare: Sequence[SocketKind] = (), nftables: bool = False) -> Unbound:
    """A new network namespace with lo up and the sockets of `prepare` (and a libnftables
    context when `nftables`) opened in it for later (see the module's doc); no file yet.
    OSError as the kernel refused."""

    def work() -> Unbound:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        tid = threading.get_native_id()
        made = Unbound(fds.park(os.open(f"/proc/self/task/{tid}/ns/net", os.O_RDONLY)))
        try:
            made.spares = [(kind, fds.park_socket(socket.socket(*kind))) for kind in prepare]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                ifctl.set_up(probe.fileno(), "lo")  # every container has its loopback up
            # Interfaces are born without IPv6 (no link-local address, no router solicitation):
            # an endpoint on an IPv6 network turns it on for its own interface (enable_ipv6).
            with contextlib.suppress(FileNotFoundError):  # a kernel without IPv6: nothing to do
                _write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")
                # held as long as the namespace lives: parked out of select()'s range (fds.py)
                made.v6_default = fds.park(
                    os.open(f"/proc/sys/{V6_DEFAULT}", os.O_WRONLY | os.O_CLOEXEC)
                )
            if nftables:
                made.nft = new_nftables()
        except BaseException:
            made.close()
            raise
        return made

    return _in_thread(work)


def bind_unbound(path: Path, made: Unbound) -> None:
    """Give a namespace of make_unbound its file at `path` (a bind mount) and keep what was
    opened in it for the takers of that path. `made` is used up, also when this fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError as exc:
            raise KernelError(f"create network namespace {path}: file exists") from exc
        os.close(fd)
        source = f"/proc/self/fd/{made.fd}".encode()
        if _libc.mount(source, bytes(path), None, MS_BIND, None) != 0:
            err = ctypes.get_errno()
            path.unlink(missing_ok=True)
            raise KernelError(f"create network namespace {path}: {os.strerror(err)}")
    except BaseException:
        made.close()
        raise
    os.close(made.fd)
    with _spare_lock:
        if made.spares:
            _spare[str(path)] = made.spares
        if made.nft is not None:
            _spare_nft[str(path)] = made.nft
        if made.v6_default is not None:
            _v6_default[str(path)] = made.v6_default
        if made.extras:
            _extras[str(path)] = made.extras


def create_netns(path: Path, prepare: Sequence[SocketKind] = (), nftables: bool = False) -> None:
    """Create a new network namespace bind-mounted at `path`, with lo up and the sockets of
    `prepare` (and a libnftables context when `nftables`) opened in it for later (see the
    module's doc). kernel/netnspool.py makes them ahead of need the same way."""
    if path.exists():  # refused before a namespace is made for nothing (bind_unbound checks too)
        raise KernelError(f"create network namespace {path}: file exists")
    try:
        made = make_unbound(prepare, nftables)
    except OSError as exc:
        raise KernelError(f"create network namespace {path}: {exc.strerror}") from exc
    bind_unbound(path, made)


V6_DEFAULT = "net/ipv6/conf/default/disable_ipv6"


@contextlib.contextmanager
def ipv6_born_on(path: str | Path) -> Iterator[bool]:
    """Interfaces created in the namespace at `path` inside this block are born with IPv6 on
    (its default is off again after). Yields False when that cannot be done this way (a
    namespace this process did not create): the caller then uses enable_ipv6 afterwards."""
    with _spare_lock:
        fd = _v6_default.get(str(path))
    if fd is None:
        yield False
        return
    os.pwrite(fd, b"0", 0)  # a sysctl write at offset 0: the whole value
    try:
        yield True
    finally:
        os.pwrite(fd, b"1", 0)


def _write_sysctl(key: str, value: str) -> None:
    # /proc/sys/net is the opening thread's network namespace's.
    with open(f"/proc/sys/{key}", "w") as fh:
        fh.write(value)


def enable_ipv6(path: str | Path, ifname: str) -> None:
    """Turn IPv6 on for one interface in the namespace at `path` (born with it off, see
    create_netns)."""

    def work() -> None:
        _enter(path)
        _write_sysctl(f"net/ipv6/conf/{ifname}/disable_ipv6", "0")

    try:
        _in_thread(work)
    except OSError as exc:
        raise KernelError(f"enable IPv6 on {ifname} in {path}: {exc.strerror or exc}") from exc


def _take_spare(path: str | Path, kind: SocketKind) -> socket.socket | None:
    with _spare_lock:
        spares = _spare.get(str(path), [])
        for i, (have, sock) in enumerate(spares):
            if have == kind:
                del spares[i]
                if not spares:
                    del _spare[str(path)]
                return sock
    return None


def take_extra(path: str | Path, key: str) -> Any:
    """What was readied under `key` in the namespace at `path` before it had its file
    (Unbound.extras), once; None when nothing was."""
    with _spare_lock:
        extras = _extras.get(str(path), {})
        found = extras.pop(key, None)
        if not extras:
            _extras.pop(str(path), None)
    return found


def delete_netns(path: Path) -> None:
    """Unmount and remove a namespace file; already gone is success."""
    with _spare_lock:
        for extra in _extras.pop(str(path), {}).values():
            extra.close()
        for _kind, sock in _spare.pop(str(path), []):
            sock.close()
        fd = _v6_default.pop(str(path), None)
    if fd is not None:
        os.close(fd)
        _spare_nft.pop(str(path), None)  # its socket closes with the context
    if _libc.umount2(bytes(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise KernelError(f"unmount netns {path}: {os.strerror(err)}")
    path.unlink(missing_ok=True)


def netlink_socket_in(path: str | Path) -> socket.socket:
    """A NETLINK_ROUTE socket that lives in the namespace at `path` (a file or /proc/PID/ns/net)."""
    return socket_in(path, *NETLINK)


def new_nftables() -> Any:
    """A libnftables context acting on the calling thread's namespace."""
    import nftables  # the Debian libnftables through its ctypes binding

    nft = nftables.Nftables()
    nft.set_json_output(False)
    nft.set_handle_output(False)
    return nft


def prepare_sockets(paths: Sequence[str | Path], kinds: Sequence[SocketKind]) -> None:
    """Make sockets of `kinds` in each namespace of `paths` ahead of `sockets_in`, from ONE
    throwaway thread that enters the namespaces in turn (a daemon adopting 1,000 containers
    would otherwise start 1,000 threads). A namespace that cannot be entered is skipped:
    `sockets_in` then reports it when asked."""

    def work() -> dict[str, list[tuple[SocketKind, socket.socket]]]:
        made: dict[str, list[tuple[SocketKind, socket.socket]]] = {}
        for path in paths:
            try:
                _enter(path)
                made[str(path)] = [(kind, fds.park_socket(socket.socket(*kind))) for kind in kinds]
            except OSError:
                continue
        return made

    made = _in_thread(work)
    with _spare_lock:
        for path, spares in made.items():
            _spare.setdefault(path, []).extend(spares)


def take_spare_nftables(path: str | Path) -> Any:
    """The libnftables context made with the namespace at `path` (or by prepare), if nobody
    took it yet; None otherwise."""
    with _spare_lock:
        return _spare_nft.pop(str(path), None)


def run_inside(path: str | Path, fn: Callable[[], T]) -> T:
    """fn's result, run in a throwaway thread that entered the namespace at `path` first."""

    def work() -> T:
        _enter(path)
        return fn()

    return _in_thread(work)


def _enter(path: str | Path) -> None:
    """Move the calling thread into the namespace at `path` (only ever in a throwaway thread)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns({path})")
    finally:
        os.close(fd)


def socket_in(path: str | Path, family: int, type: int, proto: int = 0) -> socket.socket:
    """A socket of (family, type, proto) that lives in the namespace at `path`: a socket stays
    in the namespace it was created in, whichever thread later binds or uses it."""
    return sockets_in(path, [(family, type, proto)])[0]


def sockets_in(path: str | Path, kinds: Sequence[SocketKind]) -> list[socket.socket]:
    """Sockets of the given kinds in the namespace at `path`: the spares made with it, and
    the rest made in one throwaway thread (one namespace switch, not one per socket)."""
    found = [_take_spare(path, kind) for kind in kinds]
    missing = [i for i, sock in enumerate(found) if sock is None]
    if missing:

        def work() -> list[socket.socket]:
            _enter(path)
            made: list[socket.socket] = []
            try:
                for i in missing:
                    made.append(fds.park_socket(socket.socket(*kinds[i])))
            except BaseException:
                for sock in made:
                    sock.close()
                raise
            return made

        try:
            made = _in_thread(work)
        except OSError as exc:
            for sock in found:
                if sock is not None:
                    sock.close()
            raise KernelError(f"enter network namespace {path}: {exc.strerror or exc}") from exc
        for i, sock in zip(missing, made, strict=True):
            found[i] = sock
    return [sock for sock in found if sock is not None]


def prepare(path: str | Path, kinds: Sequence[SocketKind], loopback: bool, nftables: bool) -> None:
    """Visit a namespace someone else made (a CNI runtime's) once: bring lo up (the resolver
    binds 127.0.0.11 there), open the sockets of `kinds` and a libnftables context, for
    sockets_in and nftables_in to hand out, as create_netns does for our own namespaces. What
    is not taken is closed by drop_spares."""
    nft: list[Any] = []

    def work() -> list[tuple[SocketKind, socket.socket]]:
        _enter(path)
        spares = [(kind, socket.socket(*kind)) for kind in kinds]
        if loopback:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                ifctl.set_up(probe.fileno(), "lo")
        if nftables:
            nft.append(new_nftables())
        return spares

    try:
        spares = _in_thread(work)
    except OSError as exc:
        raise KernelError(f"enter network namespace {path}: {exc.strerror or exc}") from exc
    with _spare_lock:
        if spares:
            _spare.setdefault(str(path), []).extend(spares)
        if nft:
            _spare_nft[str(path)] = nft[0]


def drop_spares(path: str | Path) -> None:
    """Close what prepare() opened in path and nobody took."""
    with _spare_lock:
        for _kind, sock in _spare.pop(str(path), []):
            sock.close()
        _spare_nft.pop(str(path), None)


def share_dir(path: Path) -> bool:
    """Make the directory of namespace files a mount of its own, shared (what `ip netns` does
    for /run/netns: other mount namespaces still see the files), so that the shim zygote can
    leave it, and every namespace file later made below it, out of its own mount namespace
    (runtime/zygote.py). Not when it is no mount yet but holds an older daemon's namespaces:
    binding it over them would leave the originals under copies, alive after their unmount.
    Returns whether it is such a mount."""
    path.mkdir(parents=True, exist_ok=True)
    if _libc.mount(None, bytes(path), None, MS_SHARED, None) == 0:
        return True  # a mount already (an earlier boxnetd's): EINVAL where it is not
    if any(is_netns(entry) for entry in path.iterdir()):
        return False
    _check(_libc.mount(bytes(path), bytes(path), None, MS_BIND | MS_REC, None), f"bind {path}")
    _check(_libc.mount(None, bytes(path), None, MS_SHARED, None), f"share {path}")
    return True


def is_netns(path: str | Path) -> bool:
    """Whether path is a live network namespace (a bind mount or /proc/PID/ns/net) rather than
    a missing or left-over plain file: namespace files all live on the one nsfs device."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False
