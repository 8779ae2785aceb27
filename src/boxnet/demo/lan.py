"""Tutorial §3.2, containers on two hosts of one LAN, in its own throwaway LAN lab.

LAN 192.168.198.0/24: gateway .2, host1 .142 and host2 .143 (each with ens33 and its own boxnetd),
workstation .10. `python -m boxnet.demo --lan` runs only this section.
"""

from __future__ import annotations

from boxnet.demo.show import boxnet, note, on, section
from boxnet.lab import Lab, lan_lab

WWW = "mkdir -p /www && echo tomcat-page > /www/index.html && exec httpd -f -p 8080 -h /www"


def tutorial_3_2() -> None:
    with Lab("demo-lan") as lab:
        lan = lan_lab(2, lab)
        host1, host2 = lan.hosts
        section("3.2 Containers on two hosts: a LAN lab (gateway .2, hosts .142/.143, pc .10)")
        d1 = lab.boxnetd(host1)
        d2 = lab.boxnetd(host2)
        on(host1, ["ip", "-br", "addr", "show", "ens33"], "host1")
        note("the tutorial's ifcfg-br0 edit, live: ens33's MAC, address and routes move to br0")
        boxnet(d1, "hostbridge", "create", "br0", "--uplink", "ens33")
        on(host1, ["ip", "-br", "addr"], "host1")
        on(host1, ["ip", "route"], "host1")
        note("a --net=none container, then pipework gives it a LAN address on br0")
        boxnet(d1, "run", "-d", "--net=none", "--name", "tomcat", "busybox", "sh", "-c", WWW)
        boxnet(d1, "pipework", "br0", "tomcat", "192.168.198.145/24@192.168.198.2")
        boxnet(d1, "exec", "tomcat", "ip", "addr", "show", "eth1")
        note("the workstation and the other host reach it directly")
        on(lan.workstation, ["ping", "-c2", "192.168.198.145"], "workstation")
        on(host2, ["curl", "-s", "http://192.168.198.145:8080/"], "host2")
        note("unlike pipework, boxnet remembers it: it is back after a restart")
        boxnet(d1, "restart", "-t", "1", "tomcat")
        on(lan.workstation, ["curl", "-s", "http://192.168.198.145:8080/"], "workstation")
        note("the macvlan driver on host2, with the host-reaches-children fix")
        boxnet(
            d2, "network", "create", "-d", "macvlan", "-o", "parent=ens33",
            "--subnet", "192.168.198.0/24", "--gateway", "192.168.198.2",
            "--ip-range", "192.168.198.160/28", "-o", "boxnet.macvlan.host_ip=192.168.198.180",
            "lan",
        )  # fmt: skip
        boxnet(d2, "run", "-d", "--net", "lan", "--ip", "192.168.198.161", "--name", "web",
               "busybox", "sh", "-c", WWW)  # fmt: skip
        on(lan.workstation, ["curl", "-s", "http://192.168.198.161:8080/"], "workstation")
        on(host1, ["ping", "-c1", "192.168.198.161"], "host1")
        on(host2, ["ping", "-c1", "192.168.198.161"], "host2")
        note("and everything back as it was")
        boxnet(d1, "rm", "-f", "tomcat")
        boxnet(d1, "hostbridge", "rm", "br0")
        on(host1, ["ip", "-br", "addr"], "host1")
        section("Clean-up: the LAN lab")
