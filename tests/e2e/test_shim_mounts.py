"""Container shims leave the daemon's namespace files out of their mount namespaces (issue 20:
every container's PID 1 copies its shim's mount namespace, so one netns bind mount per running
container made each start slower the more containers ran; runtime/zygote.py).

Observers: the mount tables in /proc/PID/mountinfo (the test shares the daemon's mount
namespace; the zygote's and a container's are read through /proc), ping between containers
(each joined its network namespace by descriptor), and a bind mount made into a container.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.lab import Daemon, Lab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    lab = Lab("shimmnt")
    try:
        yield lab.boxnetd(lab.netns("host"))
    finally:
        lab.close()


def mounts(pid: int | str) -> list[tuple[str, str, str]]:
    """(mount point, optional fields, fstype) of every mount in pid's mount namespace."""
    found = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        dash = fields.index("-")
        found.append((fields[4], " ".join(fields[6:dash]), fields[dash + 1]))
    return found


def zygote_of(d: Daemon) -> int:
    """The daemon's shim zygote: its command line runs zygote.py and names d's work directory
    (so do the shims it forked, named bx-<id>; an earlier daemon's zygote exited with it)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            comm = Path(f"/proc/{pid}/comm").read_text()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        mine = b"zygote" in cmdline and str(d.workdir).encode() in cmdline
        if mine and not comm.startswith("bx-") and state != "Z":
            return int(pid)
    raise AssertionError(f"no zygote of {d.workdir}")


def start(d: Daemon, name: str, *args: str) -> dict[str, object]:
    d.cli("run", "-d", "--name", name, *args, "busybox", "sleep", "600")
    return dict(json.loads(d.cli("inspect", "--format", "json", name).stdout)[0])


def address(info: dict[str, object]) -> str:
    return str(info["NetworkSettings"]["IPAddress"])  # type: ignore[index]


def namespace_files(table: list[tuple[str, str, str]], under: Path) -> list[str]:
    return [point for point, _opt, fstype in table if point.startswith(f"{under}/")]


def test_shims_copy_no_namespace_files(daemon: Daemon, tmp_path: Path) -> None:
    netns_dir = daemon.exec_root / "netns"
    first = [start(daemon, f"m{i}") for i in range(3)]
    table = mounts("self")
    # The directory is a mount of its own, shared as `ip netns` shares /run/netns: the daemon's
    # mount namespace (ours too) sees one namespace file per running container below it.
    (own,) = [opt for point, opt, _t in table if point == str(netns_dir)]
    assert "shared:" in own
    assert len(namespace_files(table, netns_dir)) == 3
    # The zygote's namespace has neither the directory's mount nor any namespace file.
    zygote = mounts(zygote_of(daemon))
    assert [p for p, _o, _t in zygote if p.startswith(str(netns_dir))] == []
    assert [p for p, _o, _t in zygote if p.startswith(str(netns_dir))] == []
    # Starts still work: each container is in its own network, reachable, and a host directory
    # made after the zygote started is bound in.
    data = tmp_path / "later"
    data.mkdir()
    (data / "x").write_text("seen\n")
    seen = daemon.cli("run", "--rm", "-v", f"{data}:/data", "busybox", "cat", "/data/x").stdout
    assert seen == "seen\n"
    out = daemon.cli("exec", "m2", "ping", "-c1", "-W2", address(first[0])).stdout
    assert "1 packets received" in out


def test_a_restarted_daemon_keeps_them_out(daemon: Daemon) -> None:
    """After a restart the directory is a mount already, the adopted containers' namespace files
    are in it, and the new zygote leaves them out too."""
    daemon.restart()
    netns_dir = daemon.exec_root / "netns"
    later = start(daemon, "m9")
    assert len(namespace_files(mounts("self"), netns_dir)) == 4
    zygote = mounts(zygote_of(daemon))
    assert [p for p, _o, _t in zygote if p.startswith(str(netns_dir))] == []
    out = daemon.cli("exec", "m0", "ping", "-c1", "-W2", address(later)).stdout
    assert "1 packets received" in out
