"""The tutorial, section by section, against a real boxnetd in a throwaway lab.

Lab: "host" (eth0 203.0.113.2/24, runs boxnetd), "outside" (203.0.113.1, a web server that answers
with the client address it saw). Nothing touches the machine's own network; everything is removed
at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import sys

from boxnet.demo.dns import dns_section
from boxnet.demo.ipv6 import ipv6_section
from boxnet.demo.networks import networks_sections
from boxnet.demo.ports import ports_sections
from boxnet.demo.show import boxnet, note, on, section
from boxnet.demo.topology import topology_section
from boxnet.lab import Daemon, Lab, basic_lab


def tutorial_1(d: Daemon, host_ns: object, outside_ns: object) -> None:
    from boxnet.lab import Netns

    assert isinstance(host_ns, Netns) and isinstance(outside_ns, Netns)
    section("1.1 Container to container: the bridge, veth pairs, namespaces")
    note("starting boxnetd created the bridge boxnet0 with 172.17.0.1/16")
    on(host_ns, ["ip", "-br", "addr", "show", "dev", "boxnet0"])
    boxnet(d, "run", "-d", "--name", "tomcat1", "busybox", "sleep", "1000")
    boxnet(d, "run", "-d", "--name", "tomcat2", "busybox", "sleep", "1000")
    note("one veth pair per container: veth…@ifN on the host, plugged into boxnet0")
    on(host_ns, ["ip", "-br", "link", "show", "master", "boxnet0"])
    note("…and eth0@ifM inside the container, in its own network namespace")
    boxnet(d, "exec", "tomcat1", "ip", "addr", "show", "eth0")
    boxnet(d, "exec", "tomcat1", "ping", "-c2", "172.17.0.3")

    section("1.2 Container to outside: masquerade (SNAT)")
    note("the nftables rule (the tutorial's iptables rule, in its correct `! -o` form):")
    rules = host_ns.run(["nft", "list", "chain", "inet", "boxnet", "nat_postrouting"]).stdout
    print("\n".join(line for line in rules.splitlines() if "172.17.0.0" in line).strip())
    result = boxnet(d, "exec", "tomcat1", "wget", "-qO-", "http://203.0.113.1/")
    seen = json.loads(result.stdout)["client"]
    note(f"the outside server saw the client {seen}: the host's address, not 172.17.0.2")


def tutorial_2_2(d: Daemon) -> None:
    section("2.2 Network modes: --net=bridge|none|container:NAME|host")
    note("none: loopback only")
    boxnet(d, "run", "--rm", "--net=none", "busybox", "ip", "-o", "addr")
    note("container:tomcat1: the same namespace, so the same eth0 and address")
    boxnet(d, "run", "--rm", "--net=container:tomcat1", "busybox", "ip", "-o", "-4", "addr")
    note("host: the host's own network stack (its eth0 203.0.113.2 and boxnet0)")
    boxnet(d, "run", "--rm", "--net=host", "busybox", "ip", "-o", "-4", "addr")
    note("--dns writes the container's own resolv.conf")
    boxnet(d, "run", "--rm", "--dns=198.51.100.53", "busybox", "cat", "/etc/resolv.conf")
    boxnet(d, "ps")


def main() -> int:
    if os.geteuid() != 0:
        print(
            "the demo builds network namespaces: run it as root (sudo make demo)", file=sys.stderr
        )
        return 1
    if "--overlay" in sys.argv[1:]:  # overlay networks across two hosts only (issue 16)
        from boxnet.demo.overlay import overlay_section

        overlay_section()
        print("done: the lab is gone")
        return 0
    if "--lan" in sys.argv[1:]:  # tutorial §3.2 only (it needs its own LAN lab)
        from boxnet.demo.lan import tutorial_3_2

        tutorial_3_2()
        print("done: the lab is gone")
        return 0
    with Lab("demo") as lab:
        basic = basic_lab(lab)
        section("A throwaway lab: host 203.0.113.2 <-> outside 203.0.113.1 (web server)")
        d = lab.boxnetd(basic.host, "--ui", "127.0.0.1:8480")
        note(f"boxnetd runs inside the lab's host namespace (pid {d.pid})")
        tutorial_1(d, basic.host, basic.outside)
        ports_sections(d, basic.host, basic.outside)
        tutorial_2_2(d)
        networks_sections(lab, d, basic.host)
        dns_section(lab, d, basic.outside)
        ipv6_section(d, basic.host, basic.outside)
        topology_section(d, basic.host)
        section("Clean-up: containers, daemon, namespaces")
    from boxnet.demo.lan import tutorial_3_2

    tutorial_3_2()
    from boxnet.demo.overlay import overlay_section

    overlay_section()  # beyond the tutorial: its overlay driver across two hosts with etcd
    print("done: the lab is gone")
    return 0
