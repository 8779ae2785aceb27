"""Overlay networks (issue 16): a container on host A talks by name to one on host B.

Lab: two hosts on the underlay 10.99.0.0/16 and a real etcd (boxnet.lab.overlay), a boxnetd per
host with --cluster-store. `python -m boxnet.demo --overlay` runs only this section (~10 s).
"""

from __future__ import annotations

import time

from boxnet.demo.show import boxnet, note, on, section
from boxnet.lab import Daemon, Lab
from boxnet.lab.overlay import overlay_lab


def _wait_network(d: Daemon, name: str) -> None:
    for _ in range(100):  # bounded: the other host's watch adopts it within ~0.1 s
        if name in d.cli("network", "ls", "--format", "{{.Name}}").stdout.split():
            return
        time.sleep(0.1)


def overlay_section() -> None:
    with Lab("demo-ovl") as lab:
        ovl = overlay_lab(2, lab)
        section("Overlay: two hosts (10.99.1.1, 10.99.1.2) and etcd (10.99.0.1) on one underlay")
        a, b = ovl.daemon(0), ovl.daemon(1)
        note("created once on host A, the network is seen by host B too: SCOPE global")
        boxnet(
            a, "network", "create", "-d", "overlay", "--subnet", "10.10.0.0/24", "app", role="hostA"
        )
        _wait_network(b, "app")
        boxnet(b, "network", "ls", "--filter", "driver=overlay", role="hostB")
        boxnet(a, "run", "-d", "--name", "web", "--network", "app", "--network-alias", "www",
               "busybox", "httpd", "-f", "-p", "80", role="hostA")  # fmt: skip
        boxnet(b, "run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "600",
               role="hostB")  # fmt: skip
        note("host B's VXLAN device got web's MAC -> host A (FDB) and IP -> MAC (neighbour)")
        on(ovl.hosts[1], ["bridge", "fdb", "show", "dev", "vx-4096"], "hostB")
        on(ovl.hosts[1], ["ip", "neigh", "show", "dev", "vx-4096"], "hostB")
        note("client on host B reaches web on host A by name and by alias")
        boxnet(b, "exec", "client", "ping", "-c2", "web", role="hostB")
        note("busybox httpd has no index page: its 404 is web answering over the overlay")
        boxnet(b, "exec", "client", "wget", "-qSO-", "http://www/", expect_ok=False, role="hostB")
        section("Clean-up: the overlay lab")
