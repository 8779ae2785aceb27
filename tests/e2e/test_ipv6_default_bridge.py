"""Issue 15 end to end: IPv6 on the default bridge (daemon.json `ipv6`, `bip6`, `fixed-cidr-v6`,
`default-gateway-v6`), on both firewall backends.

One lab and one boxnetd per backend, restarted with other daemon.json contents. Observers: `ip -j`
on the host and inside containers, ping -6 and HTTP over IPv6 through the lab's outside (the echo
server there reports the client address it saw), and the daemon's exit status and log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, LabError, basic_lab, echo_server_argv
from boxnet.lab import firewalls as fw
from boxnet.lab.proc import run, tool
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6

pytestmark = pytest.mark.e2e
CONFIG = {"ipv6": True, "bip6": "2001:db8:17::1/64", "fixed-cidr-v6": "2001:db8:17::100/120"}

Env = tuple[BasicLab, Daemon]


@pytest.fixture(scope="module", params=fw.BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    lab = Lab(f"bip6-{fw.short(request.param)}")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(request.param), config=CONFIG)
        yield basic, d
    finally:
        lab.close()


def inspect(d: Daemon, *args: str) -> dict[str, Any]:
    data = json.loads(d.cli(*args, "--format", "json").stdout)
    return dict(data[0] if isinstance(data, list) else data)


def bridge_v6(basic: BasicLab) -> list[tuple[str, int]]:
    """boxnet0's global IPv6 addresses, as `ip -j` shows them."""
    links = basic.host.ip_json("-6", "addr", "show", "dev", "boxnet0", "scope", "global")
    return [(a["local"], a["prefixlen"]) for x in links for a in x["addr_info"] if "local" in a]


def restart_with(d: Daemon, config: dict[str, Any]) -> None:
    assert d.config_file is not None
    d.stop()
    d.config_file.write_text(json.dumps(config, indent=1) + "\n")
    d.start()


def test_default_bridge_is_dual_stack(env: Env) -> None:
    basic, d = env
    assert bridge_v6(basic) == [("2001:db8:17::1", 64)]
    net = inspect(d, "network", "inspect", "bridge")
    assert net["EnableIPv6"] is True
    configs = {c["Subnet"]: c for c in net["IPAM"]["Config"]}
    assert configs["2001:db8:17::/64"]["Gateway"] == "2001:db8:17::1"
    assert configs["2001:db8:17::/64"]["IPRange"] == "2001:db8:17::100/120"
    d.cli("run", "-d", "--name", "c1", "-p", "8080:80", "host", *echo_server_argv(80))
    ep = inspect(d, "inspect", "c1")["NetworkSettings"]
    assert ep["GlobalIPv6Address"] == "2001:db8:17::100" and ep["IPv6Gateway"] == "2001:db8:17::1"
    routes = json.loads(d.cli("exec", "c1", "ip", "-j", "-6", "route", "show", "default").stdout)
    assert [r["gateway"] for r in routes] == ["2001:db8:17::1"]
    # Out through NAT66 (seen with the host's address), and in through the published port.
    out = d.cli("exec", "c1", "curl", "-s", "-g", "-m", "3", f"http://[{OUTSIDE_IPV6}]/").stdout
    assert json.loads(out)["client"] == HOST_IPV6
    assert "80/tcp -> [::]:8080" in d.cli("port", "c1").stdout.splitlines()
    res = run([tool("nsenter"), f"--net={basic.outside.path}", "--", "curl", "-s", "-g", "-m", "3",
               f"http://[{HOST_IPV6}]:8080/"], check=False)  # fmt: skip
    assert res.returncode == 0 and json.loads(res.stdout)["client"] == OUTSIDE_IPV6
    d.cli("rm", "-f", "c1")


def test_default_gateway_v6_is_the_containers_route(env: Env) -> None:
    _basic, d = env
    restart_with(d, {**CONFIG, "default-gateway-v6": "2001:db8:17::fe"})
    d.cli("run", "-d", "--name", "c2", "host", "sleep", "1000")
    assert inspect(d, "inspect", "c2")["NetworkSettings"]["IPv6Gateway"] == "2001:db8:17::fe"
    routes = json.loads(d.cli("exec", "c2", "ip", "-j", "-6", "route", "show", "default").stdout)
    assert [r["gateway"] for r in routes] == ["2001:db8:17::fe"]
    d.cli("rm", "-f", "c2")


def test_fixed_cidr_v6_alone_and_ipv6_alone(env: Env) -> None:
    basic, d = env
    restart_with(d, {"ipv6": True, "fixed-cidr-v6": "2001:db8:18::/64"})
    assert bridge_v6(basic) == [("2001:db8:18::1", 64)]  # the old one is gone
    restart_with(d, {"ipv6": True})
    [(addr, prefixlen)] = bridge_v6(basic)
    assert addr.startswith("fd") and prefixlen == 64
    restart_with(d, {})  # IPv6 off again: the bridge keeps no global IPv6 address
    assert bridge_v6(basic) == []
    assert inspect(d, "network", "inspect", "bridge")["EnableIPv6"] is False


@pytest.mark.parametrize(
    ("config", "words"),
    [
        # overlaps the host's own LAN (eth0 has 2001:db8:203::2/64): only the host can tell
        (
            {"ipv6": True, "fixed-cidr-v6": "2001:db8:203::/64"},
            "fixed-cidr-v6 2001:db8:203::/64",
        ),
        ({"ipv6": True, "bip6": "2001:db8:17::1/127"}, "/127 leaves no address for containers"),
        (
            {
                "ipv6": True,
                "fixed-cidr-v6": "2001:db8:17::/64",
                "default-gateway-v6": "2001:db8:9::1",
            },
            "2001:db8:9::1 is not inside fixed-cidr-v6 2001:db8:17::/64",
        ),
        ({"fixed-cidr-v6": "2001:db8:17::/64"}, "has no effect: ipv6 is not set"),
    ],
)
def test_bad_ipv6_daemon_options_stop_the_start(
    env: Env, config: dict[str, Any], words: str
) -> None:
    """The daemon refuses to start, naming the key and what is wrong (no traceback), and the
    next start with a good configuration brings the dual-stack bridge back."""
    basic, d = env
    with pytest.raises(LabError):
        restart_with(d, config)
    log = d.log_path.read_text().split("=== lab: starting")[-1]
    assert words in log and "Traceback" not in log, log
    if "overlaps" in words:
        assert "overlaps the address 2001:db8:203::2/64 of eth0" in log, log
    restart_with(d, CONFIG)
    assert bridge_v6(basic) == [("2001:db8:17::1", 64)]
