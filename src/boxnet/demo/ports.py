"""Demo sections for tutorial §1.3 (outside -> container: DNAT) and §2.3 (every -p form, -P).

Uses the main daemon of the demo's basic lab: a web container runs the lab's echo server, which
answers with the client address it saw, so each request shows what NAT did (or did not) do.
"""

from __future__ import annotations

import json
import time

from boxnet.demo.show import boxnet, note, on, section
from boxnet.lab import Daemon, Netns, echo_server_argv, script_argv, spoof

HOST_IP = "203.0.113.2"
ECHO = echo_server_argv(80)


def _wait_ready(ns: Netns, url: str) -> None:
    """The echo server needs a moment to listen; poll quietly (bounded) before showing requests."""
    for _ in range(100):
        if ns.run(["curl", "-s", "-m", "1", url], check=False).returncode == 0:
            return
        time.sleep(0.05)


def _curl(ns: Netns, url: str) -> str:
    result = on(ns, ["curl", "-s", "-m", "3", url])
    if result.returncode != 0 or not result.stdout:
        return "no answer"
    return str(json.loads(result.stdout)["client"])


def _probe(ns: Netns, mac: str, ip: str, port: int) -> str:
    argv = [*script_argv(spoof), "--ifname", "eth0", "--dst-mac", mac]
    result = on(ns, [*argv, "--dst-ip", ip, "--dport", str(port)])
    answer = json.loads(result.stdout) if result.returncode == 0 else {"answered": False}
    return f"answered with {answer['flags']}" if answer["answered"] else "no answer"


def tutorial_1_3(d: Daemon, host: Netns, outside: Netns) -> None:
    section("1.3 Outside -> container: DNAT (boxnet run -p 8080:80)")
    boxnet(
        d, "run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:8090:80", "host", *ECHO
    )
    _wait_ready(host, "http://127.0.0.1:8080/")
    boxnet(d, "port", "web")
    note("no proxy process: one element in an nftables map per published port")
    on(host, ["nft", "list", "map", "inet", "boxnet", "pub_any"])
    note("from the outside machine: the container sees the real client address")
    seen = _curl(outside, f"http://{HOST_IP}:8080/")
    note(f"the container saw the client {seen} (outside's own address: no masquerade)")
    note("from the host itself, and from another container through the host address (hairpin)")
    _curl(host, "http://127.0.0.1:8080/")
    boxnet(d, "run", "--rm", "busybox", "wget", "-qO-", f"http://{HOST_IP}:8080/")
    boxnet(d, "exec", "web", "curl", "-s", f"http://{HOST_IP}:8080/")

    note("127.0.0.1:8090 is host-only: the host reaches it ...")
    _curl(host, "http://127.0.0.1:8090/")
    note("... and a LAN neighbour crafting a frame to the host's MAC for 127.0.0.1 gets nothing")
    note("(CVE-2020-8558; Docker before 28 answered it). Control first: the host address.")
    mac = str(host.ip_json("link", "show", "dev", "eth0")[0]["address"])
    control = _probe(outside, mac, HOST_IP, 8080)
    attack_lo = _probe(outside, mac, "127.0.0.1", 8090)
    attack_any = _probe(outside, mac, "127.0.0.1", 8080)
    note(f"{HOST_IP}:8080 {control}; 127.0.0.1:8090 {attack_lo}; 127.0.0.1:8080 {attack_any}")


def tutorial_2_3(d: Daemon, host: Netns) -> None:
    section("2.3 Publishing ports: every -p form, -P, boxnet port")
    boxnet(
        d, "run", "-d", "--name", "forms",
        "-p", "80",                        # any free host port, all addresses
        "-p", f"{HOST_IP}::80",            # any free host port, one address
        "-p", f"{HOST_IP}:8081:80",        # fixed port, one address
        "-p", "9000-9002:7000-7002",       # a range onto a range
        "-p", "9100-9110:80",              # any free port of a range
        "-p", "5353:53/udp", "-p", "9999:9999/sctp",
        "--expose", "81", "-P",            # -P publishes every exposed port
        "busybox", "sleep", "1000",
    )  # fmt: skip
    boxnet(d, "port", "forms")
    boxnet(d, "port", "forms", "53/udp")
    on(host, ["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
    note("a port that is taken is refused with Docker's message, and nothing is left behind")
    boxnet(d, "run", "-d", "-p", "8080:80", "busybox", "sleep", "1", expect_ok=False)
    note("bad specs name the bad part")
    boxnet(d, "run", "-d", "-p", "9000-9001:80-82", "busybox", "true", expect_ok=False)
    boxnet(d, "run", "-d", "-p", "192.0.2.99:80:80", "busybox", "true", expect_ok=False)
    boxnet(d, "ps", "-a")
    boxnet(d, "rm", "-f", "forms", "web")


def ports_sections(d: Daemon, host: Netns, outside: Netns) -> None:
    tutorial_1_3(d, host, outside)
    tutorial_2_3(d, host)
