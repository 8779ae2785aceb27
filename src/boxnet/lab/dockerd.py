"""A real dockerd (Debian's docker.io 20.10) inside a lab, for the Docker network plugin's tests
and bench (issue 18, part 2).

It runs in a lab namespace (network) and in a mount namespace of its own (`unshare -m
--propagation private`) where /run is a fresh tmpfs: its plugin directory /run/docker/plugins is
a bind mount of a directory of the lab (where boxnetd serves `boxnet.sock`), and whatever it and
its containerd make under /run (shim sockets, runc state, sandbox namespaces) stays private and
vanishes with it. Data root, exec root, pid file and API socket are in the lab's temp dir; the
docker CLI is pointed at that socket with -H and a config directory of its own.

Stopping: containers first (`docker rm -f`), then SIGTERM to dockerd by PID (it stops its
containerd); anything left (shims) names the lab's temp dir and is killed by the lab's cleanup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boxnet.lab.oci import busybox_layer, layer_tar
from boxnet.lab.proc import LabError, tail, tool

if TYPE_CHECKING:
    from boxnet.lab.netns import Netns

READY_TIMEOUT = 60.0
# In the private mount namespace: a tmpfs on /run, the lab's plugin directory on
# /run/docker/plugins, then dockerd ($1 = that directory, the rest = dockerd's argv).
INNER = (
    "mount -t tmpfs -o mode=0755 bxdocker /run && mkdir -p /run/docker/plugins"
    ' && mount --bind "$1" /run/docker/plugins && shift && exec "$@"'
)
# Debian's client (docker.io), not whatever else PATH finds first (/usr/local/bin).
DOCKER = "/usr/bin/docker"
APPLETS = ("httpd", "ip", "nslookup", "wget", "ping", "sleep", "cat")


class DockerEngine:
    def __init__(self, ns: Netns, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        self.ns = ns
        self.workdir = workdir
        self.plugins = workdir / "plugins"  # /run/docker/plugins inside its mount namespace
        self.socket = workdir / "docker.sock"
        self.log_path = workdir / "dockerd.log"
        for d in (self.plugins, workdir / "data", workdir / "exec", workdir / "cli"):
            d.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        dockerd = [tool("dockerd"), "-H", f"unix://{self.socket}"]
        dockerd += ["--data-root", str(self.workdir / "data")]
        dockerd += ["--exec-root", str(self.workdir / "exec")]
        dockerd += ["--pidfile", str(self.workdir / "dockerd.pid")]
        # No firewall of Docker's in the lab's host namespace: boxnet's rules are the ones
        # under test (Docker's FORWARD policy DROP would also drop boxnet's forwarded packets).
        # No default bridge either (docker0 would take a subnet in the lab's host namespace).
        dockerd += ["--iptables=false", "--ip-masq=false", "--bridge=none", *self.extra_args]
        inner = [tool("unshare"), "-m", "--propagation", "private", "--"]
        return [*inner, tool("sh"), "-ec", INNER, "lab-dockerd", str(self.plugins), *dockerd]

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise LabError("dockerd is not started")
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._proc = self.ns.popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LabError(f"dockerd exited at start:\n{tail(self.log_path)}")
            if self.cli("version", "--format", "{{.Server.Version}}", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise LabError(f"dockerd did not answer in {READY_TIMEOUT:.0f} s:\n{tail(self.log_path)}")

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this dockerd (any namespace will do: it is a unix socket)."""
        argv = [DOCKER, "-H", f"unix://{self.socket}", *args]
        env = {**os.environ, "DOCKER_CONFIG": str(self.workdir / "cli")}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise LabError(f"docker {' '.join(args)}: {proc.stderr.strip()[-2000:]}")
        return proc

    def load_busybox(self, name: str = "bxbusybox") -> str:
        """`docker import` a busybox-static root (nothing downloaded); returns its name."""
        files: dict[str, Any] = busybox_layer(Path(tool("busybox")))
        for applet in APPLETS:
            files[f"bin/{applet}"] = ("symlink", "busybox")
        files["www"] = ("dir", "")
        files["www/index.html"] = b"hello from docker\n"
        tarball = self.workdir / "busybox.tar"
        tarball.write_bytes(layer_tar(files))
        self.cli("import", str(tarball), name)
        return name

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM by PID (dockerd stops its containers, then its containerd)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Remove every container, then stop; best effort (the lab kills what remains)."""
        if self.running():
            with contextlib.suppress(Exception):
                ids = self.cli("ps", "-aq", check=False).stdout.split()
                if ids:
                    self.cli("rm", "-f", *ids, check=False)
        self.stop()
