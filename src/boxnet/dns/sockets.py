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
from boxnet.kernel import netns

RESOLVER_IP = redirect.RESOLVER_IP
KINDS = [(socket.AF_INET, socket.SOCK_DGRAM, 0), (socket.AF_INET, socket.SOCK_STREAM, 0)]


def open_sockets(
    netns_path: str | Path, ports_file: Path | None = None
) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on 127.0.0.11 inside the namespace at netns_path, with
    127.0.0.11:53 redirected to them there; the ports of ports_file again when possible."""
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
