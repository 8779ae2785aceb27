"""Where boxnet keeps its files. Every path derives from two roots and the socket."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SOCKET = "/run/boxnet.sock"
DEFAULT_DATA_ROOT = "/var/lib/boxnet"
DEFAULT_EXEC_ROOT = "/run/boxnet"
DEFAULT_CONFIG_FILE = "/etc/boxnet/daemon.json"


def socket_path_from_host(host: str) -> str:
    """`unix:///run/boxnet.sock` or a bare path -> the socket's file path."""
    if host.startswith("unix://"):
        return host[len("unix://") :]
    return host


@dataclass(frozen=True)
class Paths:
    data_root: Path
    exec_root: Path
    socket: Path

    @property
    def db(self) -> Path:
        return self.data_root / "boxnet.db"

    @property
    def images(self) -> Path:
        return self.data_root / "images"

    @property
    def containers(self) -> Path:
        return self.data_root / "containers"

    def container_dir(self, container_id: str) -> Path:
        """Durable per-container files: hosts, resolv.conf, hostname, logs, exit status."""
        return self.containers / container_id

    @property
    def netns_dir(self) -> Path:
        return self.exec_root / "netns"

    def netns_path(self, container_id: str) -> Path:
        return self.netns_dir / container_id[:12]

    @property
    def dns_ports_dir(self) -> Path:
        """Each running container's resolver ports, for the next daemon (dns.sockets)."""
        return self.exec_root / "dns"

    @property
    def lock_file(self) -> Path:
        return self.exec_root / "boxnetd.lock"

    @property
    def pid_file(self) -> Path:
        return self.exec_root / "boxnetd.pid"
