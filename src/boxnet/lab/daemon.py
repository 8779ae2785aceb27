"""A boxnetd started by a lab inside one of its namespaces, its paths in the lab's temp dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from boxnet.lab.netns import Netns
from boxnet.lab.proc import LabError, run, tail

PING_TIMEOUT = 15.0
STOP_GRACE = 10.0


def venv_bin() -> Path:
    """The bin dir of the Python running us: boxnetd, boxnet and python all come from there."""
    prefix_bin = Path(sys.prefix) / "bin"
    return prefix_bin if (prefix_bin / "python").exists() else Path(sys.executable).parent


def unix_get(sock_path: str | Path, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A bare HTTP/1.0 GET over a unix socket: independent of the project's own client code."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(sock_path))
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: boxnet\r\n\r\n".encode())
        chunks = []
        for _ in range(10_000):  # bounded: HTTP/1.0 closes after the body
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


class Daemon:
    """boxnetd running in `ns` via `nsenter --net` (no private mount namespace: the netns bind
    mounts it makes must stay visible to a restarted daemon and to the lab's cleanup)."""

    def __init__(
        self,
        ns: Netns,
        workdir: Path,
        extra_args: Sequence[str] = (),
        config: dict[str, Any] | None = None,
        exe: Sequence[str] | None = None,
    ) -> None:
        self.ns = ns
        self.workdir = workdir
        self.data_root = workdir / "data"
        self.exec_root = workdir / "exec"
        self.socket = workdir / "boxnet.sock"
        self.log_path = workdir / "boxnetd.log"
        self.config_file: Path | None = None
        for d in (self.data_root, self.exec_root):
            d.mkdir(parents=True, exist_ok=True)
        if config is not None:
            self.config_file = workdir / "daemon.json"
            self.config_file.write_text(json.dumps(config, indent=2) + "\n")
        self.exe = list(exe) if exe else [str(venv_bin() / "boxnetd")]
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    # --- process ---------------------------------------------------------------------------

    def argv(self) -> list[str]:
        args = [*self.exe, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root)]
        args += ["-H", f"unix://{self.socket}"]
        if self.config_file is not None:
            args += ["--config-file", str(self.config_file)]
        return self.ns.argv([*args, *self.extra_args])

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise LabError("boxnetd is not started")
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running():
            raise LabError(f"boxnetd already running (pid {self.pid})")
        with self.log_path.open("ab") as log:
            log.write(f"=== lab: starting {' '.join(self.argv())}\n".encode())
            log.flush()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            self._proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + PING_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise LabError(
                    f"boxnetd exited with {self._proc.returncode} before answering /_ping; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise LabError(
            f"boxnetd did not answer /_ping on {self.socket} within {PING_TIMEOUT:.0f}s; "
            f"log {self.log_path}:\n{tail(self.log_path)}"
        )

    def ping(self) -> bool:
        try:
            status, _ = unix_get(self.socket, "/_ping")
        except OSError:
            return False
        return status == 200

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to the daemon by PID (e.g. to simulate a crash); does not wait."""
        if self.running():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM by PID, wait up to 10 s, then SIGKILL; also reaps a daemon that already died."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            if self.wait(STOP_GRACE) is None:
                self._proc.kill()
                self._proc.wait(5)
        else:
            self._proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- client ----------------------------------------------------------------------------

    def cli(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """`boxnet -H unix://<socket> ARGS`, run from the caller's own namespace (it only needs
        the socket)."""
        argv = [str(venv_bin() / "boxnet"), "-H", f"unix://{self.socket}", *args]
        return run(argv, check=check, input=input, timeout=timeout)

    def pending_intents(self) -> list[tuple[str, str]]:
        """(kind, subject) of the intent journal's rows, read from the database file itself
        (not through the daemon): a test's independent view of unfinished changes."""
        conn = sqlite3.connect(self.data_root / "boxnet.db", timeout=10)
        try:
            rows = conn.execute("SELECT kind, subject FROM intents")
            return [(str(k), str(s)) for k, s in rows]
        finally:
            conn.close()

    def remove_all_containers(self) -> list[str]:
        """`boxnet rm -f` every container if the daemon answers; returns error messages."""
        if not (self.running() and self.ping()):
            return []
        try:
            ps = self.cli("ps", "-aq", check=False, timeout=30)
            if ps.returncode != 0:
                return [f"boxnet ps -aq: {ps.stderr.strip()[-500:]}"]
            ids = ps.stdout.split()
            if not ids:
                return []
            rm = self.cli("rm", "-f", *ids, check=False, timeout=120)
            if rm.returncode != 0:
                return [f"boxnet rm -f: {rm.stderr.strip()[-500:]}"]
        except (OSError, subprocess.SubprocessError) as exc:
            return [f"removing containers: {exc}"]
        return []

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return f"Daemon(ns={self.ns.name!r}, socket={str(self.socket)!r}, pid={pid})"
