"""Demo section: name resolution (issue 5): names, aliases, isolation of names, forwarding."""

from __future__ import annotations

from boxnet.demo.show import boxnet, note, section
from boxnet.lab import Daemon, Lab, Netns
from boxnet.lab.dns_upstream import dns_server


def dns_section(lab: Lab, d: Daemon, outside: Netns) -> None:
    section("Names: the embedded resolver on 127.0.0.11, inside every container")
    boxnet(d, "network", "create", "app")
    boxnet(d, "run", "-d", "--name", "db", "--network", "app", "--network-alias", "postgres",
           "busybox", "sleep", "1000")  # fmt: skip
    note("container names and --network-alias names resolve on a user network")
    boxnet(d, "run", "--rm", "--network", "app", "busybox", "ping", "-c1", "db")
    boxnet(d, "run", "--rm", "--network", "app", "busybox", "nslookup", "postgres")
    note("and on the default bridge too (Docker cannot)")
    boxnet(d, "run", "-d", "--name", "cache", "busybox", "sleep", "1000")
    boxnet(d, "run", "--rm", "busybox", "ping", "-c1", "cache")
    note("isolation: a container on vault cannot resolve one that is only on blog")
    boxnet(d, "network", "create", "--internal", "vault")
    boxnet(d, "network", "create", "blog")
    boxnet(d, "run", "-d", "--name", "php", "--network", "blog", "busybox", "sleep", "1000")
    boxnet(d, "run", "--rm", "--network", "vault", "busybox", "nslookup", "php", expect_ok=False)
    note("(vault is --internal: nothing is forwarded outside either, CVE-2024-29018)")
    upstream = dns_server(lab, outside, "192.0.2.53")
    note("other names go to the container's upstream: here --dns 203.0.113.1, a lab DNS server")
    boxnet(d, "run", "--rm", "--dns", "203.0.113.1", "busybox", "nslookup", "www.example.test")
    boxnet(d, "run", "--rm", "--dns", "203.0.113.1", "busybox", "cat", "/etc/resolv.conf")
    note(f"the upstream logged: {upstream.queries()[:2]} (from the host's address)")
    for name in ("db", "cache", "php"):
        boxnet(d, "rm", "-f", name)
    for net in ("app", "vault", "blog"):
        boxnet(d, "network", "rm", net)
