"""Issue 18 with a real runtime: Debian's Podman 4.3, CNI backend, a boxnet conflist.

Podman runs inside the lab's "host" namespace (where boxnetd runs) with everything of its own in
a temporary directory: storage (--root, vfs), run state (--runroot, --tmpdir), containers.conf
(network_backend "cni", the plugin directory holding `boxnet-cni install`'s links, the network
configuration directory holding the conflist). The image is `podman import`ed from a rootfs
made of busybox-static: nothing is downloaded. Podman makes its namespaces under /run/netns and
its CNI cache under /var/lib/cni: the test removes only what appeared there during it.

Observers: ping and nslookup inside Podman's containers, HTTP from the lab's outside host to the
published port, `ip -j` on the host, `podman inspect` against `boxnet network inspect`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, venv_bin
from boxnet.lab.proc import tool

pytestmark = pytest.mark.e2e

NETWORK = "bxpod"
SUBNET = "10.99.9.0/24"
IMAGE = "localhost/bxbusybox"
APPLETS = ("sh", "ping", "httpd", "nslookup", "sleep", "cat", "ip")
# runc may not raise limits past this sandbox's hard limits (Podman asks for 1048576 files).
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
CNI_CACHE = Path("/var/lib/cni/results")
NETNS_DIR = Path("/run/netns")


class Podman(NamedTuple):
    lab: Lab
    basic: BasicLab
    daemon: Daemon
    base: list[str]
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = self.basic.host.argv([*self.base, *args])
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {proc.stderr.strip()[-2000:]}")
        return proc


def write_setup(tmp: Path, d: Daemon) -> Path:
    """Plugin links, the boxnet conflist, containers.conf; returns containers.conf."""
    plugins, networks = tmp / "plugins", tmp / "net"
    networks.mkdir()
    install = [str(venv_bin() / "boxnet-cni"), "install", str(plugins)]
    subprocess.run(install, check=True, capture_output=True)
    assert (plugins / "boxnet").read_bytes()[:4] == b"\x7fELF"  # Podman execs the C plugin
    conflist = {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "boxnet",
                "boxnetHost": f"unix://{d.socket}",
                "ipam": {"subnet": SUBNET, "gateway": "10.99.9.1"},
                "capabilities": {"portMappings": True, "aliases": True},
            }
        ],
    }
    (networks / f"{NETWORK}.conflist").write_text(json.dumps(conflist, indent=2))
    conf = tmp / "containers.conf"
    conf.write_text(
        "[network]\n"
        'network_backend = "cni"\n'
        f'cni_plugin_dirs = ["{plugins}", "/usr/lib/cni"]\n'
        f'network_config_dir = "{networks}"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        'runtime = "runc"\n'
    )
    return conf


def rootfs_tarball(tmp: Path) -> Path:
    rootfs = tmp / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(tool("busybox"), rootfs / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", rootfs / "bin" / applet)
    for name in ("etc", "proc", "sys", "dev", "tmp", "www"):
        (rootfs / name).mkdir()
    (rootfs / "www" / "index.html").write_text("hello from podman\n")
    tarball = tmp / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(rootfs, arcname=".")
    return tarball


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else set()
    cache_before = set(os.listdir(CNI_CACHE)) if CNI_CACHE.is_dir() else set()
    cni_dir_existed = CNI_CACHE.parent.exists()
    # Podman refuses a runroot path longer than 50 characters: a short directory of its own.
    tmp = Path(tempfile.mkdtemp(prefix="bxpod"))
    lab = Lab("cni-podman")
    p: Podman | None = None
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        conf = write_setup(tmp, d)
        base = [tool("podman"), "--root", str(tmp / "root"), "--runroot", str(tmp / "run")]
        base += ["--tmpdir", str(tmp / "libpod"), "--storage-driver", "vfs"]
        env = {**os.environ, "CONTAINERS_CONF": str(conf), "TMPDIR": str(tmp)}
        p = Podman(lab, basic, d, base, env)
        assert p.run("info", "--format", "{{.Host.NetworkBackend}}").stdout.strip() == "cni"
        p.run("import", str(rootfs_tarball(tmp)), IMAGE)
        yield p
    finally:
        if p is not None:
            with contextlib.suppress(Exception):
                p.run("rm", "-af", "-t", "0", check=False)
                p.run("rmi", "-af", check=False)
        lab.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)], check=False)
        # Podman's own leftovers, only the ones that appeared during this module.
        if NETNS_DIR.is_dir():
            for name in set(os.listdir(NETNS_DIR)) - netns_before:
                if name.startswith(("netns-", "cni-")):
                    subprocess.run([tool("ip"), "netns", "del", name], check=False)
        if CNI_CACHE.is_dir():
            for name in set(os.listdir(CNI_CACHE)) - cache_before:
                if name.startswith(f"{NETWORK}-"):
                    (CNI_CACHE / name).unlink(missing_ok=True)
        if not cni_dir_existed:  # libcni made /var/lib/cni/results for us: empty, it goes
            for empty in (CNI_CACHE, CNI_CACHE.parent):
                with contextlib.suppress(OSError):
                    empty.rmdir()


def podman_ip(p: Podman, name: str) -> str:
    data = json.loads(p.run("inspect", name).stdout)[0]
    return str(data["NetworkSettings"]["Networks"][NETWORK]["IPAddress"])


def boxnet_listed(p: Podman) -> dict[str, Any]:
    data = json.loads(p.daemon.cli("network", "inspect", "--format", "json", NETWORK).stdout)
    net = data[0] if isinstance(data, list) else data
    return {v["Name"]: v for v in net["Containers"].values()}


def test_two_podman_containers_ping_each_other_by_name(podman: Podman) -> None:
    p = podman
    p.run("run", "-d", *ULIMITS, "--name", "pa", "--network", NETWORK, IMAGE, "sleep", "600")
    p.run("run", "-d", *ULIMITS, "--name", "pb", "--network", NETWORK, IMAGE, "sleep", "600")
    ip_a, ip_b = podman_ip(p, "pa"), podman_ip(p, "pb")
    # boxnet addressed them (its network, made from the conflist's subnet) and lists them.
    listed = boxnet_listed(p)
    assert listed["pa"]["IPv4Address"] == f"{ip_a}/24"
    assert listed["pb"]["IPv4Address"] == f"{ip_b}/24"
    # Names come from boxnet's resolver (Podman's /etc/hosts has neither).
    assert "pb" not in p.run("exec", "pa", "cat", "/etc/hosts").stdout.split()
    assert p.run("exec", "pa", "cat", "/etc/resolv.conf").stdout.startswith("nameserver 127.0.0.11")
    looked = p.run("exec", "pa", "nslookup", "pb", "127.0.0.11").stdout
    assert ip_b in looked
    ping = p.run("exec", "pa", "ping", "-c1", "-W2", "pb").stdout
    assert f"from {ip_b}" in ping and "1 packets received" in ping
    assert "1 packets received" in p.run("exec", "pb", "ping", "-c1", "-W2", "pa").stdout


def test_published_port_reachable_from_outside_and_gone_after_rm(podman: Podman) -> None:
    p = podman
    p.run(
        "run", "-d", *ULIMITS, "--name", "web", "--network", NETWORK, "-p", "8090:80", IMAGE,
        "httpd", "-f", "-p", "80", "-h", "/www",
    )  # fmt: skip
    url = "http://203.0.113.2:8090/"
    got = p.basic.outside.run(["curl", "-s", "--max-time", "5", url], check=False)
    assert got.returncode == 0 and got.stdout == "hello from podman\n", got.stderr
    veths = {x["ifname"] for x in p.basic.host.ip_json("link") if x["ifname"].startswith("veth")}
    p.run("rm", "-f", "-t", "0", "web")
    # Podman's teardown ran the plugin's DEL: the port, the endpoint and its veth are gone.
    gone = p.basic.outside.run(["curl", "-s", "--max-time", "2", url], check=False)
    assert gone.returncode != 0
    assert "web" not in boxnet_listed(p)
    left = {x["ifname"] for x in p.basic.host.ip_json("link") if x["ifname"].startswith("veth")}
    assert len(veths - left) == 1
