"""boxnet.lab builds real namespaces; these tests check it with independent observers (ping,
HTTP, `ip -j`, /proc) and that it leaves nothing behind, least of all in our own namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import (
    BasicLab,
    Lab,
    LabError,
    LanLab,
    cleanup_stale_labs,
    lan_lab,
    venv_bin,
)
from boxnet.lab.proc import mounts_under, pid_alive

pytestmark = pytest.mark.e2e


def _ip_json(*args: str) -> Any:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def own_network() -> dict[str, Any]:
    """Our namespace's links, addresses, routes and ip_forward, minus the ever-changing bits."""
    addrs = sorted(
        (link["ifname"], a["family"], a["local"], a["prefixlen"])
        for link in _ip_json("addr")
        for a in link.get("addr_info", [])
    )
    routes = sorted(
        json.dumps({k: v for k, v in r.items() if k != "expires"}, sort_keys=True)
        for table in ("main", "local")
        for r in _ip_json("route", "show", "table", table)
    )
    return {
        "links": sorted(link["ifname"] for link in _ip_json("link")),
        "addrs": addrs,
        "routes": routes,
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
    }


@pytest.fixture(autouse=True)
def _own_namespace_untouched() -> Iterator[None]:
    before = own_network()
    yield
    assert own_network() == before


def netns_names() -> set[str]:
    return {n["name"] for n in _ip_json("netns", "list")}


def assert_gone(lab: Lab, names: list[str], pids: list[int]) -> None:
    assert not set(names) & netns_names()
    assert [p for p in pids if pid_alive(p)] == []
    assert not lab.tmpdir.exists()
    assert mounts_under(lab.tmpdir) == []


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def cmdline(pid: int) -> str:
    try:  # processes of parallel test runs come and go while we look
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def get(ns: Any, url: str) -> dict[str, Any]:
    out = ns.run(["curl", "-sS", "--max-time", "5", url], timeout=10).stdout
    return json.loads(out)


# --- topologies ------------------------------------------------------------------------------


def test_basic_lab_host_pings_and_gets_from_outside(basic: BasicLab) -> None:
    assert basic.host.ping("203.0.113.1")
    reply = get(basic.host, "http://203.0.113.1/hello")
    assert reply["client"] == "203.0.113.2"
    assert reply["path"] == "/hello"
    assert isinstance(reply["port"], int)
    # Python too, not only curl, and the UDP echo on the same port.
    code = textwrap.dedent("""
        import json, socket, urllib.request
        print(json.load(urllib.request.urlopen("http://203.0.113.1/py", timeout=5))["client"])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
        s.sendto(b"hi", ("203.0.113.1", 80)); print(s.recv(100).decode())
    """)
    out = basic.host.run([str(venv_bin() / "python"), "-c", code]).stdout.split()
    assert out == ["203.0.113.2", "203.0.113.2"]


def test_basic_lab_shape(basic: BasicLab) -> None:
    lab, host, outside = basic  # documented unpacking
    assert host.name == f"{lab.prefix}-host" and host.path == f"/run/netns/{host.name}"
    (eth0,) = host.ip_json("-4", "addr", "show", "dev", "eth0")
    assert eth0["addr_info"][0]["local"] == "203.0.113.2"
    (default,) = host.ip_json("route", "show", "default")
    assert default["gateway"] == "203.0.113.1"
    assert outside.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    assert host.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"


def test_client2_reaches_host_through_outside(basic: BasicLab) -> None:
    assert basic.client2.ping("203.0.113.2")
    (route,) = basic.client2.ip_json("route", "get", "203.0.113.2")
    assert route["gateway"] == "198.51.100.1"
    basic.lab.http_server(basic.host, 8080)
    assert get(basic.client2, "http://203.0.113.2:8080/")["client"] == "198.51.100.2"


def test_lan_lab_hosts_ping_each_other_and_gateway(lan: LanLab) -> None:
    h1, h2 = lan.hosts
    (ens33,) = h1.ip_json("-4", "addr", "show", "dev", "ens33")
    assert ens33["addr_info"][0]["local"] == "192.168.198.142"
    assert h1.ping("192.168.198.143") and h2.ping("192.168.198.142")
    assert h1.ping("192.168.198.2") and h2.ping("192.168.198.2")
    assert lan.workstation.ping("192.168.198.142")
    assert h2.ip_json("route", "show", "default")[0]["gateway"] == "192.168.198.2"


def test_switch_plug_sets_mac(lab: Lab) -> None:
    sw = lab.switch("sw")
    a, b = lab.netns("a"), lab.netns("b")
    sw.plug(a, "eth0", "192.168.198.20/24", mac="02:42:c0:a8:c6:14")
    sw.plug(b, "eth0", "192.168.198.21/24")
    assert a.ip_json("link", "show", "eth0")[0]["address"] == "02:42:c0:a8:c6:14"
    assert b.ping("192.168.198.20")
    assert {p["ifname"] for p in sw.ns.ip_json("link", "show", "master", "sw0")} == {"p1", "p2"}


def test_duplicate_role_is_refused(lab: Lab) -> None:
    lab.netns("x")
    with pytest.raises(LabError, match="role"):
        lab.netns("x")


# --- teardown ------------------------------------------------------------------------------


def test_close_removes_namespaces_processes_and_mounts() -> None:
    from boxnet.lab import basic_lab

    lab, host, _outside = basic_lab()
    names = [ns.name for ns in lab.namespaces]
    pids = [p.pid for p in lab.processes]
    # Started behind the lab's back: a background job in a lab namespace ...
    pids.append(int(host.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]).stdout))
    # ... a "container" namespace bind-mounted under the temp dir, with a process in it ...
    nsfile = lab.tmpdir / "exec" / "netns" / "c1"
    nsfile.parent.mkdir(parents=True)
    nsfile.touch()
    subprocess.run(["unshare", f"--net={nsfile}", "true"], check=True)
    children = [subprocess.Popen(["nsenter", f"--net={nsfile}", "sleep", "300"])]
    # ... a "shim" that only names the temp dir, and a plain bind mount.
    shim = [sys.executable, "-c", "import time; time.sleep(300)", str(lab.tmpdir / "shim")]
    children.append(subprocess.Popen(shim, start_new_session=True))
    pids += [c.pid for c in children]
    (lab.tmpdir / "src").mkdir()
    (lab.tmpdir / "dst").mkdir()
    subprocess.run(
        ["mount", "--bind", str(lab.tmpdir / "src"), str(lab.tmpdir / "dst")], check=True
    )
    assert set(names) <= netns_names() and all(pid_alive(p) for p in pids)

    lab.close()
    for c in children:  # reap (they are our children); killed by close, so this is quick
        c.wait(5)
    assert_gone(lab, names, pids)
    lab.close()  # idempotent


def test_failing_body_still_cleans_up() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab("failing") as lab:
        ns = lab.netns("srv")
        lab.http_server(ns, 80)
        names, pids = [ns.name], [p.pid for p in lab.processes]
        raise RuntimeError("boom")
    assert_gone(lab, names, pids)


def test_lan_lab_context_manager_cleans_up() -> None:
    with lan_lab(hosts=3) as lan:
        names = [ns.name for ns in lan.lab.namespaces]
        assert len(names) == 6 and lan.hosts[2].ping("192.168.198.142")
    assert_gone(lan.lab, names, [])


STALE_CHILD = """
import json, os, signal
from boxnet.lab import basic_lab
lab, host, outside = basic_lab()
print(json.dumps({"names": [n.name for n in lab.namespaces], "tmp": str(lab.tmpdir),
                  "pids": [p.pid for p in lab.processes]}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # die without any cleanup
"""


def test_cleanup_stale_labs_removes_what_a_killed_run_left() -> None:
    child = subprocess.run(
        [sys.executable, "-c", STALE_CHILD], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    left = json.loads(child.stdout)
    assert set(left["names"]) <= netns_names() and all(pid_alive(p) for p in left["pids"])
    mine = Lab("alive")  # a live lab must survive the sweep
    try:
        mine.netns("keep")
        removed = cleanup_stale_labs()
        assert set(left["names"]) <= set(removed)
        assert not set(left["names"]) & netns_names()
        assert f"{mine.prefix}-keep" in netns_names()
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in left["pids"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(pid_alive(p) for p in left["pids"])
        assert not Path(left["tmp"]).exists()
    finally:
        mine.close()


# --- daemons (a fake boxnetd: the real one is written elsewhere) ----------------------------

FAKE_DAEMON = """
import argparse, os, socket, subprocess, sys
p = argparse.ArgumentParser()
p.add_argument("-H"); p.add_argument("--data-root"); p.add_argument("--exec-root")
p.add_argument("--config-file"); p.add_argument("--fail", action="store_true")
a = p.parse_args()
if a.fail:
    sys.exit("fake boxnetd: refusing to start")
print("config", open(a.config_file).read() if a.config_file else None, file=sys.stderr)
# A detached "shim" that outlives us, recognisable only by the exec root in its cmdline.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", a.exec_root + "/shim"],
                 start_new_session=True)
path = a.H.removeprefix("unix://")
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen()
while True:
    c, _ = srv.accept(); c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nOK"); c.close()
"""


def test_daemon_start_restart_and_leftover_shims(basic: BasicLab, tmp_path: Path) -> None:
    script = tmp_path / "fake_boxnetd.py"
    script.write_text(FAKE_DAEMON)
    d = basic.lab.boxnetd(
        basic.host, config={"bip": "10.10.10.1/24"}, exe=[sys.executable, str(script)]
    )
    assert d.ping() and d.socket.is_socket()
    assert str(d.data_root).startswith(str(basic.lab.tmpdir))
    assert '"bip": "10.10.10.1/24"' in d.log_path.read_text()
    # It runs in the lab's host namespace, not ours.
    assert os.readlink(f"/proc/{d.pid}/ns/net") == f"net:[{os.stat(basic.host.path).st_ino}]"
    first = d.pid
    d.restart()
    assert d.pid != first and not pid_alive(first) and d.ping()
    d.kill(signal.SIGKILL)
    d.wait(5)
    assert not d.ping()
    shims = [p for p in all_pids() if str(d.exec_root) in cmdline(p)]
    assert len(shims) == 2  # one per daemon start
    names = [ns.name for ns in basic.lab.namespaces]
    basic.lab.close()
    assert_gone(basic.lab, names, shims)


def test_daemon_failure_reports_its_stderr(lab: Lab, tmp_path: Path) -> None:
    script = tmp_path / "fake_boxnetd.py"
    script.write_text(FAKE_DAEMON)
    ns = lab.netns("host")
    with pytest.raises(LabError, match="refusing to start"):
        lab.boxnetd(ns, "--fail", exe=[sys.executable, str(script)])
