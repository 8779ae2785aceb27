"""The resolver's redirect batch (dns/redirect.py), golden: what the container's namespace gets."""

from __future__ import annotations

from boxnet.dns.redirect import render

GOLDEN = """\
add table ip boxnet-dns
flush table ip boxnet-dns
table ip boxnet-dns {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001
    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40002
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 127.0.0.11 udp sport 40001 snat to :53
    ip saddr 127.0.0.11 tcp sport 40002 snat to :53
  }
}
"""


def test_the_batch_redirects_port_53_to_the_resolvers_ports() -> None:
    assert render(40001, 40002) == GOLDEN


def test_only_boxnets_own_table_is_touched() -> None:
    touched = [line for line in render(1, 2).splitlines() if "table" in line]
    assert len(touched) == 3 and all(" table ip boxnet-dns" in f" {x}" for x in touched)
