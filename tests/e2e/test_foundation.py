"""Issue 2 end to end: the default bridge, the four network modes, the container verbs.

One lab for the module (host + outside + client2) with one boxnetd in "host", once per firewall
backend (nftables, iptables); every check uses an independent observer: ping, HTTP from the
outside server's point of view, `ip -j`, `nft -j`, `iptables-save`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab import firewalls as fw

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=fw.BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[tuple[BasicLab, Daemon]]:
    # (conftest's pytest_runtest_setup skips e2e tests before this runs where labs cannot.)
    lab = Lab(f"foundation-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        daemon = lab.boxnetd(basic.host, *fw.daemon_args(request.param))
        yield basic, daemon
    finally:
        lab.close()


def run_ok(d: Daemon, *args: str) -> str:
    return str(d.cli(*args).stdout)


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return data[0] if isinstance(data, list) else data


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_default_bridge_exists_with_gateway_address(env: tuple[BasicLab, Daemon]) -> None:
    basic, _d = env
    links = {link["ifname"]: link for link in basic.host.ip_json("-d", "link")}
    assert links["boxnet0"]["linkinfo"]["info_kind"] == "bridge"
    addrs = basic.host.ip_json("addr", "show", "dev", "boxnet0")[0]["addr_info"]
    assert {(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"} == {
        ("172.17.0.1", 16)
    }
    forwarding = basic.host.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()
    assert forwarding == "1"


def test_containers_talk_by_ip_over_the_bridge(env: tuple[BasicLab, Daemon]) -> None:
    basic, d = env
    run_ok(d, "run", "-d", "--name", "c1", "busybox", "sleep", "1000")
    run_ok(d, "run", "-d", "--name", "c2", "host", "sleep", "1000")
    ip1 = inspect(d, "c1")["NetworkSettings"]["IPAddress"]
    ip2 = inspect(d, "c2")["NetworkSettings"]["IPAddress"]
    assert (ip1, ip2) == ("172.17.0.2", "172.17.0.3")
    ping = d.cli("exec", "c1", "ping", "-c1", "-W2", ip2, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 packets received" in ping.stdout
    # The host sees veth…@ifN enslaved to boxnet0; the container sees eth0@ifM.
    host_links = basic.host.ip_json("link")
    veths = [x for x in host_links if x["ifname"].startswith("veth")]
    assert len(veths) >= 2
    assert all(x.get("master") == "boxnet0" for x in veths)
    inside = d.cli("exec", "c1", "ip", "-o", "link").stdout
    assert "eth0@if" in inside
    pid = inspect(d, "c1")["State"]["Pid"]
    own = basic.host.run(["readlink", "/proc/self/ns/net"]).stdout.strip()
    theirs = basic.host.run(["readlink", f"/proc/{pid}/ns/net"]).stdout.strip()
    assert own != theirs


def test_outbound_is_masqueraded_to_the_host_address(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    out = d.cli("run", "--rm", "busybox", "wget", "-qO-", "http://203.0.113.1/").stdout
    assert json.loads(out)["client"] == "203.0.113.2"
    out = d.cli("run", "--rm", "host", "curl", "-s", "http://203.0.113.1/").stdout
    assert json.loads(out)["client"] == "203.0.113.2"


def test_nat_rules_live_in_the_daemon_namespace_only(env: tuple[BasicLab, Daemon]) -> None:
    basic, d = env
    ruleset = json.loads(basic.host.run(["nft", "-j", "list", "ruleset"]).stdout)
    tables = {
        (x["table"]["family"], x["table"]["name"]) for x in ruleset["nftables"] if "table" in x
    }
    assert ("ip", "boxnet") not in tables  # the table of boxnet < 0.2 (IPv4 only)
    if fw.of_args(d.extra_args) == "nftables":
        assert ("inet", "boxnet") in tables
        rules = [x["rule"] for x in ruleset["nftables"] if "rule" in x]
        assert any(
            "masquerade" in json.dumps(r["expr"]) and "172.17.0.0" in json.dumps(r["expr"])
            for r in rules
        )
    else:
        assert ("inet", "boxnet") not in tables
        nat = fw.ipt(basic.host, "iptables", "-t", "nat", "-S")
        assert "-A BOXNET-POSTROUTING -s 172.17.0.0/16 ! -o boxnet0 -j MASQUERADE" in nat


def test_network_mode_none_has_only_loopback(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    out = d.cli("run", "--rm", "--net", "none", "busybox", "ip", "-o", "link").stdout
    names = [line.split(":")[1].strip() for line in out.strip().splitlines()]
    assert names == ["lo"]


def test_network_mode_host_sees_the_host_interfaces(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    out = d.cli("run", "--rm", "--net", "host", "busybox", "ip", "-o", "link").stdout
    assert "boxnet0" in out and "eth0" in out


def test_network_mode_container_shares_the_namespace(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    run_ok(d, "run", "-d", "--name", "owner", "busybox", "sleep", "1000")
    ip = inspect(d, "owner")["NetworkSettings"]["IPAddress"]
    out = d.cli("run", "--rm", "--net", "container:owner", "busybox", "ip", "-o", "addr").stdout
    assert f"inet {ip}/16" in out
    bad = d.cli(
        "run", "--rm", "--net", "container:owner", "-p", "80:80", "busybox", "true", check=False
    )
    assert bad.returncode == 125 and "conflicting options" in bad.stderr
    d.cli("rm", "-f", "owner")


def test_run_returns_the_exit_code_and_streams_output(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    res = d.cli(
        "run", "--rm", "busybox", "sh", "-c", "echo hello; echo oops >&2; exit 3", check=False
    )
    assert res.returncode == 3
    assert res.stdout == "hello\n"
    assert "oops" in res.stderr
    missing = d.cli("run", "--rm", "busybox", "no-such-command", check=False)
    assert missing.returncode == 127


def test_lifecycle_verbs(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    cid = run_ok(
        d, "run", "-d", "--name", "life", "busybox", "sh", "-c", "echo started; exec sleep 1000"
    ).strip()
    assert len(cid) == 64
    assert wait_for(lambda: "started" in d.cli("logs", "life").stdout)
    assert "life" in d.cli("ps").stdout
    assert cid in d.cli("ps", "-q", "--no-trunc").stdout
    d.cli("stop", "-t", "1", "life")
    state = inspect(d, "life")["State"]
    assert state["Running"] is False and state["ExitCode"] == 137
    assert "life" not in d.cli("ps").stdout and "life" in d.cli("ps", "-a").stdout
    d.cli("start", "life")
    assert inspect(d, "life")["State"]["Running"] is True
    d.cli("restart", "-t", "1", "life")
    assert inspect(d, "life")["State"]["Running"] is True
    d.cli("kill", "life")
    assert d.cli("wait", "life").stdout.strip() == "137"
    d.cli("rm", "life")
    assert "life" not in d.cli("ps", "-a").stdout


def test_stopped_container_releases_its_address_and_veth(env: tuple[BasicLab, Daemon]) -> None:
    basic, d = env
    run_ok(d, "run", "-d", "--name", "tmp1", "busybox", "sleep", "1000")
    veth = inspect(d, "tmp1")["NetworkSettings"]["Networks"]["bridge"]["HostInterfaceName"]
    assert any(x["ifname"] == veth for x in basic.host.ip_json("link"))
    d.cli("rm", "-f", "tmp1")
    assert wait_for(lambda: all(x["ifname"] != veth for x in basic.host.ip_json("link")))


def test_bad_input_is_refused_cleanly(env: tuple[BasicLab, Daemon]) -> None:
    basic, d = env
    before_ps = d.cli("ps", "-aq").stdout
    before_links = len(basic.host.ip_json("link"))
    cases = [
        (("run", "-d", "nosuchimage", "true"), "No such image"),
        (("run", "-d", "--net", "nosuchnet", "busybox", "true"), "network nosuchnet not found"),
        (("run", "-d", "--net", "container:ghost", "busybox", "true"), "No such container"),
        (("stop", "ghost"), "No such container"),
        (("inspect", "ghost"), "No such object: ghost"),
    ]
    for args, message in cases:
        res = d.cli(*args, check=False)
        assert res.returncode != 0, args
        assert message in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    run_ok(d, "run", "-d", "--name", "dup", "busybox", "sleep", "1000")
    dup = d.cli("run", "-d", "--name", "dup", "busybox", "sleep", "1000", check=False)
    assert dup.returncode == 125
    assert 'Conflict. The container name "/dup" is already in use' in dup.stderr
    d.cli("stop", "-t", "0", "dup")
    stopped = d.cli("run", "-d", "--net", "container:dup", "busybox", "true", check=False)
    assert stopped.returncode == 125 and "non running container" in stopped.stderr
    d.cli("rm", "-f", "dup")
    assert d.cli("ps", "-aq").stdout == before_ps
    assert wait_for(lambda: len(basic.host.ip_json("link")) == before_links)


def test_cli_without_daemon_says_how_to_fix_it(lab: Lab) -> None:
    import subprocess

    from boxnet.lab import venv_bin

    res = subprocess.run(
        [str(venv_bin() / "boxnet"), "-H", f"unix://{lab.tmpdir}/nothing.sock", "ps"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode != 0
    assert "cannot connect to the boxnet daemon" in res.stderr
    assert "boxnetd" in res.stderr
    assert "Traceback" not in res.stderr


def test_second_daemon_on_the_same_paths_is_refused(env: tuple[BasicLab, Daemon]) -> None:
    import subprocess

    basic, d = env
    res = subprocess.run(
        ["nsenter", f"--net={basic.host.path}", "--", *d.argv()],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 1
    assert "already running" in res.stderr
    assert d.ping()


def test_api_socket_is_root_only(env: tuple[BasicLab, Daemon]) -> None:
    import stat

    _basic, d = env
    st = d.socket.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert (st.st_uid, st.st_gid) == (0, 0)
