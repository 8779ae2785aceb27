"""Network namespaces made ahead of need (kernel/netnspool.py, issue 20).

Observers: the kernel's own view of namespaces (the inode behind a namespace file and behind the
daemon's descriptors, `ip -j link` inside through nsenter), /proc/PID/fd, and a container's
traffic through a namespace that came from the pool.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.core.sandbox import NETWORK_SOCKETS
from boxnet.errors import KernelError
from boxnet.kernel import netns
from boxnet.kernel.netnspool import NetnsPool
from boxnet.lab import Daemon, Lab
from boxnet.lab.proc import run, tool

pytestmark = pytest.mark.e2e


def wait_for(predicate: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def namespace_fds(pid: int | str) -> dict[int, str]:
    """Descriptor -> `net:[inode]` for each network namespace pid holds open."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("net:["):
            found[int(name)] = target
    return found


def inode_of(path: Path) -> str:
    return f"net:[{os.stat(path).st_ino}]"


@pytest.fixture
def pool() -> Iterator[NetnsPool]:
    made = NetnsPool(2, NETWORK_SOCKETS, nftables=True)
    try:
        yield made
    finally:
        made.close()


def test_a_taken_namespace_is_a_ready_container_namespace(pool: NetnsPool, tmp_path: Path) -> None:
    pool.start()
    assert wait_for(lambda: pool.ready() == 2)
    held = set(namespace_fds("self").values())
    path = tmp_path / "c1"
    assert pool.take(path)
    try:
        assert netns.is_netns(path) and inode_of(path) in held  # one of those made ahead
        links = json.loads(run([tool("nsenter"), f"--net={path}", "ip", "-j", "link"]).stdout)
        assert [(x["ifname"], x["operstate"]) for x in links] == [("lo", "UNKNOWN")]
        assert "UP" in links[0]["flags"]
        # What was made in it waits for the start under its file: the sockets, the IPv6
        # default's sysctl, the libnftables context.
        key = str(path)
        assert sorted(kind for kind, _s in netns._spare[key]) == sorted(NETWORK_SOCKETS)
        assert key in netns._v6_default and key in netns._spare_nft
        # The start takes them: the netlink socket made in it, the IPv6 default's descriptor.
        sock = netns.netlink_socket_in(path)
        try:
            assert netns.NETLINK not in [kind for kind, _s in netns._spare[key]]
            with netns.ipv6_born_on(path) as flipped:
                assert flipped
        finally:
            sock.close()
        assert wait_for(lambda: pool.ready() == 2)  # made again, in the background
    finally:
        netns.delete_netns(path)
    assert not path.exists()


def test_a_path_that_exists_is_refused_and_nothing_leaks(pool: NetnsPool, tmp_path: Path) -> None:
    pool.start()
    assert wait_for(lambda: pool.ready() == 2)
    path = tmp_path / "taken"
    path.write_text("")
    before = len(namespace_fds("self"))
    with pytest.raises(KernelError, match="file exists"):
        pool.take(path)
    assert wait_for(lambda: pool.ready() == 2)
    assert len(namespace_fds("self")) == before  # one let go, one made in its place


def test_it_makes_none_while_the_caller_is_busy(tmp_path: Path) -> None:
    before = namespace_fds("self")
    quiet = threading.Event()
    pool = NetnsPool(1, NETWORK_SOCKETS, nftables=False, quiet=quiet.wait)
    try:
        pool.start()
        time.sleep(0.3)
        assert pool.ready() == 0 and not pool.take(tmp_path / "none")
        quiet.set()
        assert wait_for(lambda: pool.ready() == 1)
    finally:
        quiet.set()
        pool.close()
    assert pool.ready() == 0 and namespace_fds("self") == before


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    lab = Lab("nspool")
    try:
        yield lab.boxnetd(lab.netns("host"))
    finally:
        lab.close()


def test_containers_get_the_namespaces_made_ahead(daemon: Daemon) -> None:
    daemon.cli("run", "--rm", "busybox", "true")  # the image, and a first start
    assert wait_for(lambda: len(namespace_fds(daemon.pid)) >= 2)
    ahead = set(namespace_fds(daemon.pid).values())
    daemon.cli("run", "-d", "--name", "p1", "busybox", "sleep", "600")
    daemon.cli("run", "-d", "--name", "p2", "busybox", "sleep", "600")
    first = inode_of(daemon.exec_root / "netns" / short_id(daemon, "p1"))
    assert first in ahead
    info = json.loads(daemon.cli("inspect", "--format", "json", "p1").stdout)[0]
    address = info["NetworkSettings"]["IPAddress"]
    out = daemon.cli("exec", "p2", "ping", "-c1", "-W2", address).stdout
    assert "1 packets received" in out
    # The embedded resolver answers in a namespace made ahead (its sockets were made there).
    named = daemon.cli("network", "create", "named").stdout.strip()
    assert named
    daemon.cli("run", "-d", "--name", "n1", "--network", "named", "busybox", "sleep", "600")
    out = daemon.cli(
        "run", "--rm", "--network", "named", "busybox", "ping", "-c1", "-W2", "n1"
    ).stdout
    assert "1 packets received" in out


def short_id(d: Daemon, name: str) -> str:
    return d.cli("inspect", "--format", "{{.Id}}", name).stdout.strip()[:12]


def test_the_resolver_is_readied_ahead(tmp_path: Path) -> None:
    """dns/sockets.prebind: the resolver's sockets bound on 127.0.0.11 and 127.0.0.11:53
    redirected to them, before the namespace has a file; open_sockets hands them over."""
    from boxnet.dns import sockets as dns_sockets

    pool = NetnsPool(1, NETWORK_SOCKETS, nftables=True, readied=dns_sockets.prebind)
    try:
        pool.start()
        assert wait_for(lambda: pool.ready() == 1)
        path, ports_file = tmp_path / "r1", tmp_path / "r1.ports"
        assert pool.take(path)
        try:
            rules = run([tool("nsenter"), f"--net={path}", "nft", "list", "table", "ip",
                         "boxnet-dns"]).stdout  # fmt: skip
            udp, tcp = dns_sockets.open_sockets(path, ports_file)
            try:
                ports = (udp.getsockname()[1], tcp.getsockname()[1])
                assert udp.getsockname()[0] == tcp.getsockname()[0] == "127.0.0.11"
                assert f"udp dport 53 dnat to 127.0.0.11:{ports[0]}" in rules
                assert f"tcp dport 53 dnat to 127.0.0.11:{ports[1]}" in rules
                written = ports_file.read_text().split()
                assert written == [str(ports[0]), str(ports[1]), str(path.stat().st_ino)]
                # A query to 127.0.0.11:53 from inside arrives on the UDP socket.
                probe = "import socket; s=socket.socket(2,2); s.sendto(b'q',('127.0.0.11',53))"
                run([tool("nsenter"), f"--net={path}", "python3", "-c", probe])
                assert wait_for(lambda: _readable(udp), 5)
                assert udp.recv(16) == b"q"
            finally:
                udp.close()
                tcp.close()
        finally:
            netns.delete_netns(path)
    finally:
        pool.close()


def test_what_was_readied_goes_with_an_untaken_namespace(tmp_path: Path) -> None:
    from boxnet.dns import sockets as dns_sockets

    before = len(os.listdir("/proc/self/fd"))
    pool = NetnsPool(1, NETWORK_SOCKETS, nftables=True, readied=dns_sockets.prebind)
    pool.start()
    assert wait_for(lambda: pool.ready() == 1)
    path = tmp_path / "r2"
    assert pool.take(path)
    netns.delete_netns(path)  # a start that failed before its resolver: sockets closed
    pool.close()
    assert wait_for(lambda: len(os.listdir("/proc/self/fd")) <= before, 5)


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()  # parked descriptors are past select()'s 1024
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
