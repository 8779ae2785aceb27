"""Ports published on [::1]: a small in-daemon proxy, because no DNAT rule can serve them.

IPv4 has route_localnet: the host's 127.0.0.1 -> container flow is DNATed in nat output,
masqueraded on the bridge, and the reply, un-NATed back to 127.0.0.1, is routed in. IPv6 has
no such switch: a reply whose destination becomes ::1 after un-NAT arrives on a bridge, and the
kernel's route lookup for a loopback destination is strict about the interface (rt6_need_strict),
so it is dropped. Docker has the same limit and serves ::1 with docker-proxy only.

So a binding on ::1 is a listening socket on [::1]:PORT in the daemon, relaying to the
container's IPv6 address: TCP (one thread per direction of a connection) and UDP (one upstream
socket per client, closed after a minute idle). Only the host's own processes can reach ::1 at
all (the kernel drops a frame for ::1 arriving on any other interface), so the host-only
promise of loopback publishing holds by construction. The container sees the bridge gateway's
address as client, as it sees the masqueraded host for 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable

from boxnet.errors import Conflict, InvalidArgument
from boxnet.firewall.base import DnatIntent

UDP_IDLE_SECONDS = 60.0
CONNECT_TIMEOUT = 5.0
BUFFER = 65536


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy src to dst until EOF, then half-close dst (so the other direction can finish)."""
    try:
        while data := src.recv(BUFFER):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _relay(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


class _Listener:
    """One [::1]:port/proto binding and its serving thread."""

    def __init__(self, d: DnatIntent) -> None:
        kind = socket.SOCK_STREAM if d.proto == "tcp" else socket.SOCK_DGRAM
        self.target = (str(d.container_ip), d.container_port)
        self.sock = socket.socket(socket.AF_INET6, kind)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("::1", d.host_port))
            if kind == socket.SOCK_STREAM:
                self.sock.listen(128)
        except OSError as exc:
            self.sock.close()
            raise Conflict(
                f"driver failed programming external connectivity: Bind for [::1]:{d.host_port}"
                f" failed: {exc.strerror}",
                hint="choose another host port",
            ) from exc
        serve = self._accept if kind == socket.SOCK_STREAM else self._datagrams
        self.thread = threading.Thread(target=serve, name=f"lo6-{d.host_port}", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _addr = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=_relay, args=(client, self.target), daemon=True).start()

    def _datagrams(self) -> None:
        upstreams: dict[tuple[str, int], socket.socket] = {}
        lock = threading.Lock()

        def answer(client: tuple[str, int], up: socket.socket) -> None:
            up.settimeout(UDP_IDLE_SECONDS)
            try:
                while True:
                    self.sock.sendto(up.recv(BUFFER), client)
            except OSError:
                pass
            finally:
                with lock:
                    upstreams.pop(client, None)
                up.close()

        while True:
            try:
                data, addr = self.sock.recvfrom(BUFFER)
            except OSError:
                return
            client = (addr[0], addr[1])
            with lock:
                up = upstreams.get(client)
                if up is None:
                    up = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                    up.connect(self.target)
                    upstreams[client] = up
                    threading.Thread(target=answer, args=(client, up), daemon=True).start()
            try:
                up.send(data)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Loopback6Proxy:
    """The [::1] bindings the daemon serves; the backends hand it their DNATs (it keeps only
    the `proxied` ones), so it follows rebuilds, publishes and unpublishes like a rule would."""

    def __init__(self) -> None:
        self._listeners: dict[DnatIntent, _Listener] = {}
        self._lock = threading.Lock()

    def reset(self, dnats: Iterable[DnatIntent]) -> None:
        """Serve exactly these (those already served keep their socket and connections)."""
        wanted = [d for d in dnats if d.proxied]
        with self._lock:
            for d in [d for d in self._listeners if d not in wanted]:
                self._listeners.pop(d).close()
        self.add(d for d in wanted if d not in self._listeners)

    def add(self, dnats: Iterable[DnatIntent]) -> None:
        started: list[DnatIntent] = []
        with self._lock:
            for d in dnats:
                if not d.proxied or d in self._listeners:
                    continue
                if d.proto not in ("tcp", "udp"):
                    self._close(started)
                    raise InvalidArgument(
                        f"cannot publish {d.proto} on [::1]: only tcp and udp",
                        hint="publish it on all addresses or on an IPv4 address",
                    )
                try:
                    self._listeners[d] = _Listener(d)
                except Exception:
                    self._close(started)
                    raise
                started.append(d)

    def remove(self, dnats: Iterable[DnatIntent]) -> None:
        with self._lock:
            self._close([d for d in dnats if d.proxied])

    def _close(self, dnats: list[DnatIntent]) -> None:
        for d in dnats:
            listener = self._listeners.pop(d, None)
            if listener is not None:
                listener.close()

    def close(self) -> None:
        with self._lock:
            self._close(list(self._listeners))
