"""Demo section: a dual-stack network (issue 15), briefly.

Uses the main daemon of the demo's basic lab, whose links carry IPv6 too (host 2001:db8:203::2,
outside 2001:db8:203::1). The web container runs the lab's echo server, so each request shows
the client address the container saw.
"""

from __future__ import annotations

import json
import time

from boxnet.demo.show import boxnet, note, on, section
from boxnet.lab import Daemon, Netns, echo_server_argv
from boxnet.lab.topologies import HOST_IPV6, OUTSIDE_IPV6


def _client(ns: Netns, url: str) -> str:
    result = on(ns, ["curl", "-s", "-g", "-m", "3", url])
    if result.returncode != 0 or not result.stdout:
        return "no answer"
    return str(json.loads(result.stdout)["client"])


def ipv6_section(d: Daemon, host: Netns, outside: Netns) -> None:
    section("IPv6: a dual-stack network, NAT66 out, a port published on both families")
    net = boxnet(d, "network", "create", "--ipv6", "--subnet", "2001:db8:1::/64", "dual")
    on(host, ["ip", "-br", "addr", "show", "dev", f"br-{net.stdout.strip()[:12]}"])
    boxnet(d, "run", "-d", "--name", "web6", "--network", "dual", "-p", "8486:80", "host",
           *echo_server_argv(80))  # fmt: skip
    boxnet(d, "exec", "web6", "ip", "-br", "addr", "show", "dev", "eth0")
    boxnet(d, "exec", "web6", "ip", "-6", "route", "show", "default")
    boxnet(d, "port", "web6")
    url = f"http://[{HOST_IPV6}]:8486/"
    for _ in range(100):  # the echo server needs a moment to listen
        if outside.run(["curl", "-s", "-g", "-m", "1", url], check=False).returncode == 0:
            break
        time.sleep(0.05)
    note(f"the outside, over IPv6, through [::]:8486: the container sees {_client(outside, url)}")
    out = boxnet(d, "exec", "web6", "curl", "-s", "-g", "-m", "3", f"http://[{OUTSIDE_IPV6}]/")
    seen = json.loads(out.stdout)["client"] if out.returncode == 0 else "no answer"
    note(f"the container to the outside (NAT66): the outside sees {seen}, the host's address")
    boxnet(d, "rm", "-f", "web6")
    boxnet(d, "network", "rm", "dual")
