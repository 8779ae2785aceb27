"""127.0.0.11:53 redirected to the resolver's real ports, inside the container's namespace.

The resolver's sockets are bound to 127.0.0.11 on ephemeral ports, not on port 53, so the
container's own processes can bind 0.0.0.0:53 and [::]:53 (a DNS server in a container: dnsmasq,
CoreDNS, ...). Docker does the same: in the container's namespace, queries to 127.0.0.11:53 are
DNATed (nat output) to those ports, and anything the resolver sends from them is SNATed back to
port 53 (nat postrouting; conntrack already un-DNATs the replies, this covers flows it no longer
tracks). The rules are one table of boxnet's own, `ip boxnet-dns`, in the container's namespace:
the same whichever firewall backend the daemon uses on the host (docs/CHOICES.md, "DNS").

One atomic batch, which also replaces the rules of a previous daemon (adoption after a restart:
the new sockets have new ports): `add table` + `flush table` + the table. Not `delete table`:
deleting base chains unregisters their hooks, which waits for an RCU grace period (~11 ms per
container measured in boxnetd, against ~0.5 ms for this form). The text is a template filled with
two numbers, so nothing is rendered per container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from boxnet.errors import KernelError
from boxnet.kernel import netns_nft

TABLE = "boxnet-dns"
RESOLVER_IP = "127.0.0.11"

_TEMPLATE = f"""add table ip {TABLE}
flush table ip {TABLE}
table ip {TABLE} {{
  chain output {{
    type nat hook output priority -100; policy accept;
    ip daddr {RESOLVER_IP} udp dport 53 dnat to {RESOLVER_IP}:%(udp)d
    ip daddr {RESOLVER_IP} tcp dport 53 dnat to {RESOLVER_IP}:%(tcp)d
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {RESOLVER_IP} udp sport %(udp)d snat to :53
    ip saddr {RESOLVER_IP} tcp sport %(tcp)d snat to :53
  }}
}}
"""


def render(udp_port: int, tcp_port: int) -> str:
    """The nft batch sending 127.0.0.11:53 to the resolver's UDP and TCP ports."""
    return _TEMPLATE % {"udp": udp_port, "tcp": tcp_port}


def install(netns_path: str | Path, udp_port: int, tcp_port: int) -> None:
    """Program (or re-program) the redirect in the namespace at netns_path, atomically."""
    rc, out, err = netns_nft.nftables_cmd_in(netns_path, render(udp_port, tcp_port))
    _check(rc, out, err, netns_path)


def install_with(nft: Any, udp_port: int, tcp_port: int, where: str) -> None:
    """install() through a libnftables context made in the namespace (one made ahead that has
    no file yet: kernel/netnspool.py); the caller frees the context."""
    rc, out, err = nft.cmd(render(udp_port, tcp_port))
    _check(rc, out, err, where)


def _check(rc: int, out: str, err: str, where: str | Path) -> None:
    if rc != 0:
        raise KernelError(
            f"redirect 127.0.0.11:53 in {where}: {(err or out).strip()}",
            hint="is nf_nat available (modprobe nf_nat)?",
        )
