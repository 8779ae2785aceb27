"""The Lab: named namespaces, the links between them, processes in them, and their removal."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from boxnet.lab import lifecycle
from boxnet.lab.daemon import Daemon, venv_bin
from boxnet.lab.netns import Netns, Switch
from boxnet.lab.proc import (
    LabError,
    is_lab_pid,
    kill_verified,
    lab_pids,
    lazy_umount_all,
    mounts_under,
    netns_inode,
    run,
    safe_rmtree,
    tail,
    tool,
)

ECHO_SERVER = Path(__file__).with_name("echo_server.py")
_counter = itertools.count(1)
_counter_lock = threading.Lock()


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:limit]
    if not slug:
        raise LabError(f"unusable name {text!r}: use letters, digits, '-' or '_'")
    return slug


class Lab:
    """A throwaway set of network namespaces and processes; `with Lab() as lab:` or close().

    Namespaces are named `bxl<pid>-<n>-<role>` (n counts labs in this process), the temp dir is
    /tmp/bxl<pid>-<n>-<name>-XXXXXXXX: both unique per process, so parallel runs never collide,
    and both recognisable by cleanup_stale_labs() once the process is gone.
    """

    def __init__(self, name: str = "lab") -> None:
        with _counter_lock:
            self.number = next(_counter)
        self.owner_pid = os.getpid()
        self.prefix = f"bxl{self.owner_pid}-{self.number}"
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-{_slug(name, 16)}-"))
        self._netns: dict[str, Netns] = {}
        self._inodes: set[int] = set()
        self._procs: list[subprocess.Popen[Any]] = []
        self._daemons: list[Daemon] = []
        self.closed = False
        lifecycle.register(self)

    # --- building ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise LabError("lab is closed")

    def netns(self, role: str) -> Netns:
        """A new namespace with lo up; role must be unique within the lab."""
        self._check_open()
        role = _slug(role, 24)
        if role in self._netns:
            raise LabError(f"lab already has a namespace with role {role!r}")
        ns = Netns(name=f"{self.prefix}-{role}", role=role, lab=self)
        run([tool("ip"), "netns", "add", ns.name])
        self._netns[role] = ns
        self._inodes.add(netns_inode(ns.path))
        ns.ip("link", "set", "dev", "lo", "up")
        return ns

    def __getitem__(self, role: str) -> Netns:
        return self._netns[role]

    @property
    def namespaces(self) -> list[Netns]:
        return list(self._netns.values())

    @property
    def processes(self) -> list[subprocess.Popen[Any]]:
        return list(self._procs)

    @property
    def daemons(self) -> list[Daemon]:
        return list(self._daemons)

    def track(self, proc: subprocess.Popen[Any]) -> None:
        self._procs.append(proc)

    def link(
        self, a: Netns, a_if: str, a_addr: str | None, b: Netns, b_if: str, b_addr: str | None
    ) -> None:
        """A veth pair a:a_if <-> b:b_if with optional addresses ("203.0.113.2/24"), both up."""
        self._check_open()
        # Made from inside a, with the peer born in b: nothing touches the caller's namespace.
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
        a.addr(a_if, a_addr)
        b.addr(b_if, b_addr)

    def switch(self, role: str) -> Switch:
        """A namespace holding bridge sw0 (no STP, no forwarding delay) to plug namespaces into."""
        ns = self.netns(role)
        sw = Switch(ns)
        ns.ip("link", "add", sw.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        ns.ip("link", "set", "dev", sw.bridge, "up")
        return sw

    def route(self, ns: Netns, dest: str, via: str) -> None:
        """`ip route replace DEST via VIA` inside ns (dest may be "default")."""
        ns.ip("route", "replace", dest, "via", via)

    def http_server(self, ns: Netns, port: int = 80) -> subprocess.Popen[Any]:
        """Start echo_server.py (HTTP JSON + UDP echo on `port`) in ns; wait until it listens."""
        self._check_open()
        stem = f"http-{ns.role}-{port}"
        ready, log_path = self.tmpdir / f"{stem}.ready", self.tmpdir / f"{stem}.log"
        argv = [str(venv_bin() / "python"), "-I", str(ECHO_SERVER)]
        argv += ["--port", str(port), "--ready-file", str(ready)]
        with log_path.open("ab") as log:
            proc = ns.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"echo server in {ns.name} did not start:\n{tail(log_path)}")
            time.sleep(0.02)
        return proc

    def boxnetd(
        self,
        ns: Netns,
        *extra_args: str,
        config: dict[str, Any] | None = None,
        exe: Sequence[str] | None = None,
    ) -> Daemon:
        """Start boxnetd in ns (paths under the lab's temp dir) and wait for /_ping.

        `exe` replaces the boxnetd command (the lab's own tests use a fake daemon).
        """
        self._check_open()
        workdir = self.tmpdir / f"d{len(self._daemons) + 1}"
        workdir.mkdir()
        daemon = Daemon(ns, workdir, extra_args, config=config, exe=exe)
        self._daemons.append(daemon)
        daemon.start()
        return daemon

    # --- teardown ------------------------------------------------------------------------

    def _stop_tracked(self) -> list[str]:
        errors: list[str] = []
        live = [p for p in self._procs if p.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in live:
            try:
                proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    errors.append(f"process {proc.pid} ({proc.args!r}) survived SIGKILL")
        return errors

    def _kill_leftovers(self) -> list[str]:
        """Kill what the lab started indirectly: shims and anything naming our temp dir, and
        anything still inside our namespaces or a container namespace mounted under tmpdir."""
        inodes = set(self._inodes)
        for point, fstype in mounts_under(self.tmpdir):
            if fstype == "nsfs":
                with contextlib.suppress(OSError):
                    inodes.add(netns_inode(point))
        marks = [str(self.tmpdir)]
        pids = lab_pids(inodes, marks)
        errors = kill_verified(pids, lambda pid: is_lab_pid(pid, inodes, marks))
        for proc in self._procs:  # reap our own children among them
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        return errors

    def close(self) -> None:
        """Tear everything down, best effort, in dependency order; raise LabError listing what
        failed only after every step has been tried."""
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []

        def step(what: str, fn: Any) -> None:
            try:
                result = fn()
                if isinstance(result, list):
                    errors.extend(result)
            except Exception as exc:
                errors.append(f"{what}: {type(exc).__name__}: {exc}")

        for daemon in self._daemons:
            step(f"containers of {daemon!r}", daemon.remove_all_containers)
            step(f"stopping {daemon!r}", daemon.stop)
        step("stopping lab processes", self._stop_tracked)
        step("killing leftover processes", self._kill_leftovers)
        step("unmounting", lambda: lazy_umount_all(self.tmpdir))
        for ns in self._netns.values():
            step(f"deleting {ns.name}", lambda ns=ns: run([tool("ip"), "netns", "del", ns.name]))
        step("removing temp dir", lambda: safe_rmtree(self.tmpdir))
        lifecycle.unregister(self)
        if errors:
            raise LabError("lab cleanup incomplete:\n  " + "\n  ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except LabError as cleanup_error:
            if exc is None:
                raise
            # Do not hide the body's own failure behind a cleanup problem: report both.
            print(f"boxnet.lab: {cleanup_error}", file=sys.stderr)

    def __repr__(self) -> str:
        return f"Lab({self.prefix!r}, tmpdir={str(self.tmpdir)!r}, closed={self.closed})"
