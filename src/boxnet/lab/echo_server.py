"""Lab echo server (stand-alone, stdlib only): run as `python echo_server.py --port 80`.

HTTP: every GET/POST/HEAD answers JSON {"client": <peer addr>, "port": <peer port>,
"path": <request path>, "local": <addr the connection arrived at>, "local_port": ...}, so a test
sees what source address NAT produced. UDP on the same port: each datagram is answered with the
sender's address as text. IPv4 and IPv6 (dual-stack socket, v4-mapped addresses shown as plain
IPv4). Writes --ready-file once both sockets listen.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def plain(addr: str) -> str:
    return addr.removeprefix("::ffff:") if addr.startswith("::ffff:") and "." in addr else addr


def ipv6_available() -> bool:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, with_body: bool) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        local = self.connection.getsockname()
        body = json.dumps(
            {
                "client": plain(self.client_address[0]),
                "port": self.client_address[1],
                "path": self.path,
                "local": plain(local[0]),
                "local_port": local[1],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(True)

    def do_POST(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)


class DualStackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def udp_echo(sock: socket.socket) -> None:
    while True:
        data, peer = sock.recvfrom(65535)
        del data
        sock.sendto(plain(peer[0]).encode(), peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--ready-file", default="")
    args = parser.parse_args()

    family = socket.AF_INET6 if ipv6_available() else socket.AF_INET
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    DualStackServer.address_family = family
    server = DualStackServer((host, args.port), Handler)

    udp = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((host, args.port))
    threading.Thread(target=udp_echo, args=(udp,), daemon=True).start()

    if args.ready_file:
        # Atomic: the lab polls for the file and must never see it half written.
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, args.ready_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
