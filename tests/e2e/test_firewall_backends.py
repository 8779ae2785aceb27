"""Issue 7 end to end: the same checks against both firewall backends (nftables, iptables).

One lab + boxnetd per backend (module fixture parametrised by backend). Observers: real pings and
HTTP requests (the lab echo server reports the client address it saw), `iptables -S` /
`iptables -t nat -S` and `nft -j` in the lab host namespace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, echo_server_argv

pytestmark = pytest.mark.e2e
HOST_IP = "203.0.113.2"
OUTSIDE_IP = "203.0.113.1"
ECHO = echo_server_argv(80)


class Env:
    def __init__(self, backend: str, basic: BasicLab, d: Daemon) -> None:
        self.backend, self.basic, self.d = backend, basic, d

    def host_curl(self, url: str) -> str:
        res = self.basic.host.run(["curl", "-s", "-m", "3", url], check=False)
        return str(res.stdout) if res.returncode == 0 else ""

    def outside_curl(self, url: str) -> str:
        res = self.basic.outside.run(["curl", "-s", "-m", "3", url], check=False)
        return str(res.stdout) if res.returncode == 0 else ""

    def ipt(self, *args: str) -> list[str]:
        return str(self.basic.host.run(["iptables", "-w", *args]).stdout).splitlines()

    def nft_tables(self) -> set[tuple[str, str]]:
        data = json.loads(self.basic.host.run(["nft", "-j", "list", "tables"]).stdout)
        return {
            (x["table"]["family"], x["table"]["name"]) for x in data["nftables"] if "table" in x
        }


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    backend = str(request.param)
    lab = Lab(f"fw-{backend[:3]}")
    try:
        basic = basic_lab(lab)
        args = ("--firewall-backend", "iptables") if backend == "iptables" else ()
        d = lab.boxnetd(basic.host, *args)
        d.cli(
            "run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:8090:80", "host", *ECHO
        )
        yield Env(backend, basic, d)
    finally:
        lab.close()


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def ip_of(d: Daemon, name: str, network: str | None = None) -> str:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    data = data[0] if isinstance(data, list) else data
    nets = data["NetworkSettings"]["Networks"]
    return str(nets[network]["IPAddress"] if network else data["NetworkSettings"]["IPAddress"])


def pings(d: Daemon, name: str, dest: str) -> bool:
    return d.cli("exec", name, "ping", "-c1", "-W1", dest, check=False).returncode == 0


def test_container_to_container_and_outbound_masquerade(env: Env) -> None:
    d = env.d
    d.cli("run", "-d", "--name", "c1", "busybox", "sleep", "1000")
    assert pings(d, "c1", ip_of(d, "web"))
    out = d.cli("run", "--rm", "busybox", "wget", "-qO-", f"http://{OUTSIDE_IP}/").stdout
    assert json.loads(out)["client"] == HOST_IP


def test_published_port_from_outside_and_from_the_host(env: Env) -> None:
    assert wait_for(lambda: env.outside_curl(f"http://{HOST_IP}:8080/"))
    # An external client keeps its own address; the host via 127.0.0.1 is masqueraded.
    assert json.loads(env.outside_curl(f"http://{HOST_IP}:8080/"))["client"] == OUTSIDE_IP
    assert json.loads(env.host_curl("http://127.0.0.1:8080/"))["client"] == "172.17.0.1"
    assert env.host_curl(f"http://{HOST_IP}:8080/")


def test_hairpin_from_a_container_to_a_published_port(env: Env) -> None:
    out = env.d.cli("run", "--rm", "busybox", "wget", "-qO-", f"http://{HOST_IP}:8080/").stdout
    # Masqueraded to the bridge gateway, so the reply goes back through the host's conntrack.
    assert json.loads(out)["client"] == "172.17.0.1"


def test_loopback_only_publishing_is_host_only(env: Env) -> None:
    assert env.host_curl("http://127.0.0.1:8090/")
    assert not env.outside_curl(f"http://{HOST_IP}:8090/")
    assert not env.host_curl(f"http://{HOST_IP}:8090/")
    lan_side = env.basic.host.run(["sysctl", "-n", "net.ipv4.conf.eth0.route_localnet"]).stdout
    assert lan_side.strip() == "0"


def test_user_networks_are_isolated_and_internal_has_no_outside(env: Env) -> None:
    d = env.d
    d.cli("network", "create", "neta")
    d.cli("network", "create", "netb")
    d.cli("network", "create", "--internal", "neti")
    d.cli("run", "-d", "--name", "a1", "--net", "neta", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "a2", "--net", "neta", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "b1", "--net", "netb", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "i1", "--net", "neti", "busybox", "sleep", "1000")
    assert pings(d, "a1", ip_of(d, "a2", "neta"))
    assert not pings(d, "a1", ip_of(d, "b1", "netb"))
    assert not pings(d, "b1", ip_of(d, "a1", "neta"))
    assert pings(d, "a1", OUTSIDE_IP)
    assert not pings(d, "i1", OUTSIDE_IP)
    assert not pings(d, "i1", ip_of(d, "a1", "neta"))


def test_rules_have_the_backend_shape(env: Env) -> None:
    tables = env.nft_tables()
    if env.backend == "nftables":
        assert ("ip", "boxnet") in tables
        assert not any("BOXNET" in x for x in env.ipt("-S") + env.ipt("-t", "nat", "-S"))
        return
    assert ("ip", "boxnet") not in tables
    nat = env.ipt("-t", "nat", "-S")
    assert "-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BOXNET" in nat
    assert "-A OUTPUT -m addrtype --dst-type LOCAL -j BOXNET" in nat
    assert "-A BOXNET-POSTROUTING -s 172.17.0.0/16 ! -o boxnet0 -j MASQUERADE" in nat
    web = ip_of(env.d, "web")
    assert f"-A BOXNET -p tcp -m tcp --dport 8080 -j DNAT --to-destination {web}:80" in nat
    rules = env.ipt("-S")
    forward = [x for x in rules if x.startswith("-A FORWARD")]
    assert forward[:2] == ["-A FORWARD -j BOXNET-USER", "-A FORWARD -j BOXNET-FORWARD"]
    for chain in ("BOXNET-USER", "BOXNET-FORWARD", "BOXNET-ISOLATION-STAGE-1"):
        assert f"-N {chain}" in rules
    assert "-P FORWARD ACCEPT" in rules  # the policy is the host's, untouched


def test_user_rule_in_boxnet_user_survives_a_rebuild(env: Env) -> None:
    if env.backend != "iptables":
        pytest.skip("BOXNET-USER is the iptables backend's")
    env.ipt("-A", "BOXNET-USER", "-s", "192.0.2.99/32", "-j", "DROP")
    env.d.cli("network", "create", "netc")  # a rebuild
    assert "-A BOXNET-USER -s 192.0.2.99/32 -j DROP" in env.ipt("-S", "BOXNET-USER")
    assert env.outside_curl(f"http://{HOST_IP}:8080/")  # and the rebuilt rules still work


def test_flushed_iptables_rules_come_back(env: Env) -> None:
    if env.backend != "iptables":
        pytest.skip("the nftables backend's flush recovery is tested in test_reconcile")
    env.ipt("-t", "nat", "-F")  # what a careless firewall script does
    env.ipt("-F", "FORWARD")
    assert wait_for(
        lambda: (
            "-A FORWARD -j BOXNET-USER" in env.ipt("-S", "FORWARD")
            and "-A POSTROUTING -j BOXNET-POSTROUTING" in env.ipt("-t", "nat", "-S", "POSTROUTING")
        ),
        timeout=8,
    )
    assert wait_for(lambda: env.outside_curl(f"http://{HOST_IP}:8080/"))


def test_switching_backends_across_a_restart_leaves_nothing_of_the_other(env: Env) -> None:
    d = env.d
    other = ["--firewall-backend", "iptables"] if env.backend == "nftables" else []
    own = list(d.extra_args)
    d.kill()  # SIGKILL: the old backend's rules stay behind for the new daemon to purge
    d.wait(10)
    d.extra_args = other
    d.start()
    try:
        chains = [x for x in env.ipt("-S") + env.ipt("-t", "nat", "-S") if "BOXNET" in x]
        if env.backend == "nftables":  # now iptables
            assert ("ip", "boxnet") not in env.nft_tables()
            assert "-A FORWARD -j BOXNET-FORWARD" in chains
        else:  # now nftables: only the user's own chain may stay, unlinked
            assert ("ip", "boxnet") in env.nft_tables()
            assert [x for x in chains if "BOXNET-USER" not in x] == []
            assert "-A FORWARD -j BOXNET-USER" not in chains
        assert wait_for(lambda: env.outside_curl(f"http://{HOST_IP}:8080/"))
    finally:
        d.kill()
        d.wait(10)
        d.extra_args = own
        d.start()
