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
class Certs:
    """PEM files made by make_certs: a CA, a server certificate for the etcd addresses, a client."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certs(lab: Lab, addresses: Sequence[str]) -> Certs:
    """A throwaway CA (openssl) signing etcd's server certificate (subjectAltName = the given IP
    addresses) and one client certificate, in the lab's temp dir."""
    root = Path(tempfile.mkdtemp(prefix="etcd-tls-", dir=lab.tmpdir))
    openssl = tool("openssl")

    def sh(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=30)

    ca, ca_key = root / "ca.pem", root / "ca-key.pem"
    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lab-ca",
       "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    san = ",".join(f"IP:{a}" for a in addresses)
    for who, extra in (
        ("server", f"subjectAltName={san}"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        key, csr, cert = root / f"{who}-key.pem", root / f"{who}.csr", root / f"{who}.pem"
        sh("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=lab-{who}",
           "-keyout", str(key), "-out", str(csr))  # fmt: skip
        ext = root / f"{who}.ext"
        ext.write_text(extra + "\n")
        sh("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
           "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return Certs(ca, root / "server.pem", root / "server-key.pem", root / "client.pem",
                 root / "client-key.pem")  # fmt: skip


@dataclass(frozen=True)
class EtcdMember:
    """One running etcd member: its namespace, address, name and process."""

    ns: Netns
    address: str
    name: str
    proc: subprocess.Popen[bytes]
    root: Path  # data dir and log, in the lab's temp dir
    certs: Certs | None = None  # clients must speak TLS with a client certificate

    @property
    def client_url(self) -> str:
        scheme = "https" if self.certs else "http"
        return f"{scheme}://{self.address}:{CLIENT_PORT}"

    def curl_tls(self) -> list[str]:
        if self.certs is None:
            return []
        c = self.certs
        return ["--cacert", str(c.ca), "--cert", str(c.client_cert), "--key", str(c.client_key)]

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
        tls = []
        certs = self.members[0].certs
        if certs is not None:
            tls = [
                f"--cacert={certs.ca}",
                f"--cert={certs.client_cert}",
                f"--key={certs.client_key}",
            ]
        return where.run([tool("etcdctl"), f"--endpoints={endpoints}", *tls, *args], timeout=20)


def start_etcd(lab: Lab, ns: Netns, address: str, certs: Certs | None = None) -> EtcdCluster:
    """A one-member etcd in ns listening on address (clients over TLS when certs are given)."""
    return start_etcd_cluster(lab, [(ns, address)], certs)


def start_etcd_cluster(
    lab: Lab, where: Sequence[tuple[Netns, str]], certs: Certs | None = None
) -> EtcdCluster:
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
        members.append(_start_member(lab, ns, address, name, initial, token, certs))
    cluster = EtcdCluster(tuple(members))
    _wait_healthy(cluster)
    return cluster


def restart_member(lab: Lab, member: EtcdMember, initial_cluster: str) -> EtcdMember:
    """Start a stopped member again on its data dir (an outage that ends: the data is kept)."""
    member.stop()
    token = f"{lab.prefix}-etcd"
    again = _start_member(
        lab, member.ns, member.address, member.name, initial_cluster, token, member.certs,
        root=member.root,
    )  # fmt: skip
    _wait_healthy(EtcdCluster((again,)))
    return again


def _start_member(
    lab: Lab,
    ns: Netns,
    address: str,
    name: str,
    initial_cluster: str,
    token: str,
    certs: Certs | None,
    root: Path | None = None,
) -> EtcdMember:
    # A fresh dir per start: a test may start another etcd in the same namespace later.
    if root is None:
        root = Path(tempfile.mkdtemp(prefix=f"etcd-{ns.role}-{name}-", dir=lab.tmpdir))
    scheme = "https" if certs else "http"
    argv = [
        tool("etcd"),
        f"--name={name}",
        f"--data-dir={root / 'data'}",
        f"--listen-client-urls={scheme}://{address}:{CLIENT_PORT}",
        f"--advertise-client-urls={scheme}://{address}:{CLIENT_PORT}",
        f"--listen-peer-urls=http://{address}:{PEER_PORT}",
        f"--initial-advertise-peer-urls=http://{address}:{PEER_PORT}",
        f"--initial-cluster={initial_cluster}",
        f"--initial-cluster-token={token}",
        "--initial-cluster-state=new",
        "--log-level=warn",
        "--logger=zap",
    ]
    if certs is not None:
        argv += [
            f"--cert-file={certs.server_cert}",
            f"--key-file={certs.server_key}",
            f"--trusted-ca-file={certs.ca}",
            "--client-cert-auth",
        ]
    with (root / "etcd.log").open("ab") as log:
        proc = ns.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    return EtcdMember(ns, address, name, proc, root, certs)


def _wait_healthy(cluster: EtcdCluster) -> None:
    """Poll every member's /health until all report healthy (a leader exists), bounded."""
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(cluster.members)
    while pending:
        member = pending[0]
        probe = member.ns.run(
            [tool("curl"), "-s", "-m", "2", *member.curl_tls(), f"{member.client_url}/health"],
            check=False,
            timeout=5,
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
