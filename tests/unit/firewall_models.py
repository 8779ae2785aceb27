"""Reference FirewallModels shared by the golden tests of both firewall backends."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

from boxnet.firewall.base import BridgeIntent, DnatIntent, FirewallModel

DEFAULT = BridgeIntent("boxnet0", IPv4Network("172.17.0.0/16"), True, False, True)
INTERNAL = BridgeIntent("bx-1a2b3c4d5e6f", IPv4Network("172.18.0.0/16"), True, True, True)
NO_ICC = BridgeIntent("bx-0f9e8d7c6b5a", IPv4Network("172.19.0.0/16"), True, False, False)
# IPv6 subnets (one per network beside its IPv4 one, the bridge the same): dual stack.
DEFAULT_V6 = BridgeIntent("boxnet0", IPv6Network("2001:db8:17::/64"), True, False, True)
NO_ICC_V6 = BridgeIntent("bx-0f9e8d7c6b5a", IPv6Network("2001:db8:19::/64"), True, False, False)


def _dnat(host: str, proto: str, port: int, ip: str, cport: int) -> DnatIntent:
    return DnatIntent(IPv4Address(host), proto, port, IPv4Address(ip), cport)


MODELS: dict[str, FirewallModel] = {
    "dual-stack": FirewallModel(
        bridges=(DEFAULT, DEFAULT_V6, INTERNAL, NO_ICC, NO_ICC_V6),
        dnats=(_dnat("0.0.0.0", "tcp", 8080, "172.17.0.2", 80),),
    ),
    "default-bridge": FirewallModel(bridges=(DEFAULT,), dnats=()),
    "user-networks": FirewallModel(bridges=(DEFAULT, INTERNAL, NO_ICC), dnats=()),
    "published-ports": FirewallModel(
        bridges=(DEFAULT, INTERNAL, NO_ICC),
        dnats=(
            _dnat("0.0.0.0", "tcp", 8080, "172.17.0.2", 80),
            _dnat("127.0.0.1", "tcp", 8090, "172.17.0.2", 80),
            _dnat("192.0.2.10", "tcp", 8443, "172.17.0.3", 443),
            _dnat("0.0.0.0", "udp", 5353, "172.19.0.2", 53),
            _dnat("0.0.0.0", "sctp", 9999, "172.19.0.3", 9999),
        ),
    ),
}
