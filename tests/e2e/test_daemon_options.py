"""Issue 4: daemon options end to end (flags and daemon.json), tutorial §2.1 and §2.4.

One lab; daemons run one after another in its host namespace (each with its own state dir), or in
fresh namespaces when a test must show that nothing at all was touched. Observers: `ip -j` in the
lab's namespaces and inside containers (the `host` image has iproute2), pings, resolv.conf.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, Netns, basic_lab
from boxnet.lab.daemon import venv_bin
from boxnet.lab.proc import LabError

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent.parent / "data" / "daemon-json"


@pytest.fixture(scope="module")
def basic() -> Iterator[BasicLab]:
    lab = Lab("daemon-options")
    try:
        yield basic_lab(lab)
    finally:
        lab.close()


@contextmanager
def daemon(ns: Netns, *args: str, config: dict[str, Any] | None = None) -> Iterator[Daemon]:
    d = ns.lab.boxnetd(ns, *args, config=config)
    try:
        yield d
    finally:
        d.remove_all_containers()
        d.stop()


def addrs(ns: Netns, ifname: str) -> set[str]:
    info = ns.ip_json("-4", "addr", "show", "dev", ifname)
    return {f"{a['local']}/{a['prefixlen']}" for a in info[0]["addr_info"]} if info else set()


def links(ns: Netns) -> set[str]:
    return {x["ifname"] for x in ns.ip_json("link")}


def container_ip(d: Daemon, name: str) -> str:
    out = d.cli("exec", name, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    return out.split("inet ", 1)[1].split("/", 1)[0]


def test_bip_flag_then_restart_without_it(basic: BasicLab) -> None:
    host = basic.host
    with daemon(host, "--bip", "10.10.10.1/24") as d:
        assert addrs(host, "boxnet0") == {"10.10.10.1/24"}
        d.cli("run", "-d", "--name", "c-a", "busybox", "sleep", "1000")
        assert container_ip(d, "c-a") == "10.10.10.2"
        assert (
            d.cli("exec", "c-a", "ping", "-c1", "-W2", "203.0.113.1", check=False).returncode == 0
        )
        d.cli("rm", "-f", "c-a")
        # The configuration is the truth at every start: without --bip, back to the default.
        d.extra_args.clear()
        d.restart()
        assert addrs(host, "boxnet0") == {"172.17.0.1/16"}
        d.cli("run", "-d", "--name", "c-b", "busybox", "sleep", "1000")
        assert container_ip(d, "c-b") == "172.17.0.2"


def test_bip_removed_from_daemon_json_is_not_kept(basic: BasicLab) -> None:
    host = basic.host
    with daemon(host, config={"bip": "10.11.0.1/16"}) as d:
        assert addrs(host, "boxnet0") == {"10.11.0.1/16"}
        assert d.config_file is not None
        d.config_file.write_text("{}\n")
        d.restart()
        assert addrs(host, "boxnet0") == {"172.17.0.1/16"}


def test_fixed_cidr_default_gateway_and_dns(basic: BasicLab) -> None:
    config = {
        "bip": "10.20.0.1/16",
        "fixed-cidr": "10.20.128.0/17",
        "default-gateway": "10.20.1.1",
        "dns": ["10.20.1.1", "10.20.1.3"],
    }
    with daemon(basic.host, config=config) as d:
        d.cli("run", "-d", "--name", "gw1", "host", "sleep", "1000")
        d.cli("run", "-d", "--name", "g2", "host", "sleep", "1000")
        for name in ("gw1", "g2"):
            ip = container_ip(d, name)
            assert ip.startswith("10.20.") and int(ip.split(".")[2]) >= 128, ip
        routes = json.loads(d.cli("exec", "gw1", "ip", "-j", "-4", "route").stdout)
        default = [r for r in routes if r["dst"] == "default"]
        assert [(r["gateway"], r["dev"]) for r in default] == [("10.20.1.1", "eth0")]
        # The embedded resolver (issue 5) is the nameserver; the daemon's dns are its upstreams.
        resolv = d.cli("exec", "gw1", "cat", "/etc/resolv.conf").stdout.splitlines()
        assert [ln for ln in resolv if ln.startswith("nameserver")] == ["nameserver 127.0.0.11"]
        assert "# ExtServers: [10.20.1.1 10.20.1.3]" in resolv


def test_dns_flag_lands_in_resolv_conf(basic: BasicLab) -> None:
    with daemon(basic.host, "--dns", "198.51.100.53") as d:
        resolv = d.cli("run", "--rm", "busybox", "cat", "/etc/resolv.conf").stdout
        assert "# ExtServers: [198.51.100.53]" in resolv.splitlines()  # embedded resolver's
        host = d.cli("run", "--rm", "--net", "host", "busybox", "cat", "/etc/resolv.conf").stdout
        assert "nameserver 198.51.100.53" in host.splitlines()


def test_bridge_name_uses_an_existing_bridge_and_never_deletes_it(basic: BasicLab) -> None:
    host = basic.host
    host.ip("link", "del", "boxnet0", check=False)  # left by the earlier daemons of this module
    host.ip("link", "add", "mybr0", "type", "bridge")
    host.addr("mybr0", "10.30.0.1/24")
    try:
        with daemon(host, "--bridge", "mybr0") as d:
            assert "boxnet0" not in links(host)
            d.cli("run", "-d", "--name", "ub", "busybox", "sleep", "1000")
            assert container_ip(d, "ub") == "10.30.0.2"
            veths = [x for x in host.ip_json("link") if x.get("master") == "mybr0"]
            assert len(veths) == 1
            out = d.cli("exec", "ub", "wget", "-qO-", "http://203.0.113.1/").stdout
            assert json.loads(out)["client"] == "203.0.113.2"
        assert "mybr0" in links(host) and addrs(host, "mybr0") == {"10.30.0.1/24"}
    finally:
        host.ip("link", "del", "mybr0")


def test_bridge_none_means_no_default_network(basic: BasicLab) -> None:
    ns = basic.lab.netns("nobridge")
    with daemon(ns, "--bridge", "none") as d:
        assert links(ns) == {"lo"}
        names = d.cli("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert sorted(names) == ["host", "none"]
        res = d.cli("run", "--rm", "busybox", "true", check=False)
        assert (
            res.returncode == 125
            and "default bridge is disabled (boxnetd --bridge=none)" in res.stderr
        )
        assert "Traceback" not in res.stderr
        d.cli("network", "create", "own")
        assert d.cli("run", "--rm", "--network", "own", "busybox", "true").returncode == 0


def test_validate_names_every_mistake_of_the_tutorials_file(tmp_path: Path) -> None:
    path = tmp_path / "tutorial.json"
    shutil.copy(DATA / "tutorial.json", path)
    res = subprocess.run(
        [str(venv_bin() / "boxnetd"), "--validate", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1
    out = res.stdout + res.stderr
    for where in (":2:1:", ":2:23:", ":3:28:", ":4:30:"):
        assert f"{path}{where}" in out, out
    assert "'bip' → \"bip\"" in out and "missing comma" in out
    # Once the syntax is right the rest shows up: the misspelt key, then the bad prefix.
    fixed = tmp_path / "fixed.json"
    shutil.copy(DATA / "tutorial-1-syntax-fixed.json", fixed)
    res = subprocess.run(
        [str(venv_bin() / "boxnetd"), "--validate", "--config-file", str(fixed)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1 and "did you mean 'fixed-cidr'" in res.stdout + res.stderr
    good = DATA / "tutorial-4-valid.json"
    res = subprocess.run(
        [str(venv_bin() / "boxnetd"), "--validate", "--config-file", str(good)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0


@pytest.mark.parametrize(
    ("args", "config", "needle"),
    [
        ((), None, "tutorial.json:2:1:"),
        (("--bip", "10.10.10.1/24"), {"bip": "10.10.10.1/24"}, "bip"),
        (("--bridge", "mybr1", "--bip", "10.10.10.1/24"), None, "bridge"),
        (("--bip", "10.10.10.0/24"), None, "10.10.10.0/24"),
    ],
)
def test_a_bad_configuration_refuses_to_start_and_touches_nothing(
    basic: BasicLab, args: tuple[str, ...], config: dict[str, Any] | None, needle: str
) -> None:
    ns = basic.lab.netns(f"refuse{len(basic.lab.namespaces)}")
    if config is None and not args:
        args = ("--config-file", str(DATA / "tutorial.json"))
    with pytest.raises(LabError) as failure:
        basic.lab.boxnetd(ns, *args, config=config)
    assert "exited with 1" in str(failure.value) and needle in str(failure.value)
    assert links(ns) == {"lo"}
    assert ns.run(["nft", "list", "ruleset"]).stdout.strip() == ""
