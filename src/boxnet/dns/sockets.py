"""A container's resolver sockets: 127.0.0.11 on ephemeral ports, with 127.0.0.11:53 sent there.

The ports are remembered in a small file per container (`<exec-root>/dns/<12 hex>`), with the
inode of the namespace they belong to (a restarted container has a new namespace, and no
redirect yet), written only once the redirect is in place and removed before it is re-pointed. A
restarted daemon adopting the container binds the same ports again and, when it can, leaves the
redirect alone: no libnftables context is made in the container's namespace (~3 ms each, most
of an adoption). When it cannot (no file, or a port was taken meanwhile), it binds new ports
and re-points the redirect, as for a new container. Order makes a crash harmless: a file
always names ports the redirect points to, because the file goes before the redirect changes
and comes back after.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from boxnet.dns import redirect
from boxnet.errors import KernelError
from boxnet.kernel import netns, netns_nft

RESOLVER_IP = redirect.RESOLVER_IP
KINDS = [(socket.AF_INET, socket.SOCK_DGRAM, 0), (socket.AF_INET, socket.SOCK_STREAM, 0)]


class Prebound:
    """The resolver's sockets bound in a namespace made ahead (prebind), the redirect in place."""

    def __init__(self, udp: socket.socket, tcp: socket.socket) -> None:
        self.udp, self.tcp = udp, tcp
        self.ports = (udp.getsockname()[1], tcp.getsockname()[1])

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


PREBOUND = "resolver"  # its key in the namespace's extras (netns.take_extra)


def prebind(made: netns.Unbound) -> None:
    """What open_sockets does for a new container, done in a namespace made ahead of need
    (kernel/netnspool.py calls it between starts): its spare UDP and TCP sockets bound on
    127.0.0.11 and 127.0.0.11:53 redirected to them through the libnftables context made with
    it (~0.8 ms of every start at N=1,000). open_sockets takes them once it has its file."""
    spares = dict(made.spares)
    udp, tcp = spares.get(KINDS[0]), spares.get(KINDS[1])
    if udp is None or tcp is None or made.nft is None:
        return  # not a namespace for the resolver: open_sockets does it all later
    made.spares = [(kind, sock) for kind, sock in made.spares if sock not in (udp, tcp)]
    try:
        _bind(udp, tcp, (0, 0), "a namespace made ahead", quiet=False)
        ready = Prebound(udp, tcp)
        redirect.install_with(made.nft, *ready.ports, where="a namespace made ahead")
    except BaseException:
        udp.close()
        tcp.close()
        raise
    netns_nft.free_later([made.nft])  # its only use; freed off this thread's path
    made.nft = None
    made.extras[PREBOUND] = ready


def open_sockets(
    netns_path: str | Path, ports_file: Path | None = None
) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on 127.0.0.11 inside the namespace at netns_path, with
    127.0.0.11:53 redirected to them there: the ones bound ahead (prebind) when there are, else
    the ports of ports_file again when possible, else new ones."""
    ready = netns.take_extra(netns_path, PREBOUND)
    if isinstance(ready, Prebound):
        try:
            if ports_file is not None:
                _write_ports(ports_file, ready.ports, netns_path)
        except BaseException:
            ready.close()
            raise
        return ready.udp, ready.tcp
    remembered = _read_ports(ports_file, netns_path)
    if remembered is not None:
        udp, tcp = netns.sockets_in(netns_path, KINDS)
        if _bind(udp, tcp, remembered, netns_path, quiet=True):
            return udp, tcp  # the redirect already points here
        udp.close()
        tcp.close()
    if ports_file is not None:
        with contextlib.suppress(FileNotFoundError):
            ports_file.unlink()
    udp, tcp = netns.sockets_in(netns_path, KINDS)
    try:
        _bind(udp, tcp, (0, 0), netns_path, quiet=False)
        ports = (udp.getsockname()[1], tcp.getsockname()[1])
        redirect.install(netns_path, *ports)
        if ports_file is not None:
            _write_ports(ports_file, ports, netns_path)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def prepare(netns_paths: list[str]) -> None:
    """Make the sockets of many containers at once (a restarted daemon adopting them): one
    thread visits every namespace, instead of one thread per container."""
    netns.prepare_sockets(netns_paths, KINDS)


def forget(ports_file: Path | None) -> None:
    """The container's namespace is gone (or going): its ports mean nothing any more."""
    if ports_file is not None:
        with contextlib.suppress(FileNotFoundError):
            ports_file.unlink()


def _bind(
    udp: socket.socket, tcp: socket.socket, ports: tuple[int, int], where: str | Path, quiet: bool
) -> bool:
    try:
        # The old daemon's TCP connections may linger in TIME_WAIT on the remembered port.
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind((RESOLVER_IP, ports[0]))
        tcp.bind((RESOLVER_IP, ports[1]))
        tcp.listen(64)
        udp.setblocking(False)
        tcp.setblocking(False)
    except OSError as exc:
        if quiet:
            return False
        raise KernelError(
            f"open DNS sockets on {RESOLVER_IP} in {where}: {exc.strerror}",
            hint="is the container's loopback up?",
        ) from exc
    return True


def _read_ports(ports_file: Path | None, netns_path: str | Path) -> tuple[int, int] | None:
    if ports_file is None:
        return None
    try:
        udp, tcp, inode = (int(x) for x in ports_file.read_text().split())
        current = os.stat(netns_path).st_ino
    except (OSError, ValueError):
        return None
    if inode != current or not (0 < udp < 65536 and 0 < tcp < 65536):
        return None  # another namespace's ports (the container was restarted), or damaged
    return udp, tcp


def _write_ports(ports_file: Path, ports: tuple[int, int], netns_path: str | Path) -> None:
    inode = os.stat(netns_path).st_ino
    tmp = ports_file.with_name(ports_file.name + ".tmp")
    try:
        tmp.write_text(f"{ports[0]} {ports[1]} {inode}\n")
    except FileNotFoundError:
        ports_file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(f"{ports[0]} {ports[1]} {inode}\n")
    os.replace(tmp, ports_file)
