"""Real etcd for tests: Debian's etcd-server (3.4) started inside lab namespaces.

Each member listens only on its namespace's lab address (client port 2379, peer port 2380), keeps
its data in the lab's temp dir and is tracked by the lab, so `Lab.close()` kills it by PID. Nothing
listens in the namespace the tests run in. `start_etcd` makes one member; `start_etcd_cluster` makes
a static cluster of several members (one per namespace) and waits until it has a leader.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from boxnet.lab.core import Lab
from boxnet.lab.netns import Netns
from boxnet.lab.proc import LabError, tool

CLIENT_PORT = 2379
PEER_PORT = 2380
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class EtcdMember:
    """One running etcd member: its namespace, address, name and process."""

    ns: Netns
    address: str
    name: str
    proc: subprocess.Popen[bytes]
    root: Path  # data dir and log, in the lab's temp dir

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{CLIENT_PORT}"

    @property
    def endpoint(self) -> str:
        """host:port, as --cluster-store etcd://HOST:PORT wants it."""
        return f"{self.address}:{CLIENT_PORT}"

    def stop(self) -> None:
        """Kill this member (a member that dies, for failure tests)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass(frozen=True)
class EtcdCluster:
    members: tuple[EtcdMember, ...]

    @property
    def store_url(self) -> str:
        """The --cluster-store value naming every member."""
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def etcdctl(self, *args: str, ns: Netns | None = None) -> subprocess.CompletedProcess[str]:
        """Run etcdctl (v3 API) against every member, from ns (the first member's by default)."""
        where = ns if ns is not None else self.members[0].ns
        endpoints = ",".join(m.client_url for m in self.members)
        return where.run([tool("etcdctl"), f"--endpoints={endpoints}", *args], timeout=20)


def start_etcd(lab: Lab, ns: Netns, address: str) -> EtcdCluster:
    """A one-member etcd in ns listening on address."""
    return start_etcd_cluster(lab, [(ns, address)])


def start_etcd_cluster(lab: Lab, where: Sequence[tuple[Netns, str]]) -> EtcdCluster:
    """A static etcd cluster, one member per (namespace, address); returns once it has a leader."""
    if not where:
        raise LabError("an etcd cluster needs at least one member")
    names = [f"m{i + 1}" for i in range(len(where))]
    addresses = [address for _, address in where]
    initial = ",".join(
        f"{name}=http://{address}:{PEER_PORT}"
        for name, address in zip(names, addresses, strict=True)
    )
    token = f"{lab.prefix}-etcd"
    members = []
    for name, (ns, address) in zip(names, where, strict=True):
        members.append(_start_member(lab, ns, address, name, initial, token))
    cluster = EtcdCluster(tuple(members))
    _wait_healthy(cluster)
    return cluster


def _start_member(
    lab: Lab, ns: Netns, address: str, name: str, initial_cluster: str, token: str
) -> EtcdMember:
    # A fresh dir per start: a test may start another etcd in the same namespace later.
    root = Path(tempfile.mkdtemp(prefix=f"etcd-{ns.role}-{name}-", dir=lab.tmpdir))
    argv = [
        tool("etcd"),
        f"--name={name}",
        f"--data-dir={root / 'data'}",
        f"--listen-client-urls=http://{address}:{CLIENT_PORT}",
        f"--advertise-client-urls=http://{address}:{CLIENT_PORT}",
        f"--listen-peer-urls=http://{address}:{PEER_PORT}",
        f"--initial-advertise-peer-urls=http://{address}:{PEER_PORT}",
        f"--initial-cluster={initial_cluster}",
        f"--initial-cluster-token={token}",
        "--initial-cluster-state=new",
        "--log-level=warn",
        "--logger=zap",
    ]
    with (root / "etcd.log").open("ab") as log:
        proc = ns.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    return EtcdMember(ns, address, name, proc, root)


def _wait_healthy(cluster: EtcdCluster) -> None:
    """Poll every member's /health until all report healthy (a leader exists), bounded."""
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(cluster.members)
    while pending:
        member = pending[0]
        probe = member.ns.run(
            [tool("curl"), "-s", "-m", "2", f"{member.client_url}/health"], check=False, timeout=5
        )
        healthy = False
        if probe.returncode == 0:
            try:
                healthy = json.loads(probe.stdout).get("health") == "true"
            except ValueError:
                healthy = False
        if healthy:
            pending.pop(0)
            continue
        if member.proc.poll() is not None or time.monotonic() > deadline:
            log = member.root / "etcd.log"
            raise LabError(f"etcd member {member.name} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
