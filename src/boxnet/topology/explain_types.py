"""What explain reads and what it answers: the scene, the steps, the verdict; the target parser
and the reason behind each of boxnet's rule kinds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)

from boxnet.errors import InvalidArgument
from boxnet.firewall.base import FirewallModel
from boxnet.model import Container, Endpoint, Network

LOOPBACK = IPv4Network("127.0.0.0/8")
IP = IPv4Address | IPv6Address
REASONS = {
    "internal_in": "internal network: nothing leaves it",
    "internal_out": "internal network: nothing enters it from elsewhere",
    "dnat_accept": "published port: DNATed traffic may enter the bridge",
    "isolation": "isolation: traffic routed into a bridge from elsewhere is dropped",
    "out_accept": "traffic leaving a bridge for the world is allowed",
    "icc": "inter-container communication is off on this network (enable_icc=false)",
    "dnat": "published port",
    "masq": "outgoing traffic leaves with the host's address",
    "masq_dnat": "hairpin: a container reached a published port; replies return via the host",
    "masq_lo": "the host reached a port published on 127.0.0.1: replies must come back",
    "loopback_prerouting": "loopback protection: 127.0.0.0/8 is never DNATed for other hosts",
    "loopback_raw": "loopback protection: containers cannot reach the host's 127.0.0.0/8",
    "proxy6": "::1 has no route_localnet: boxnetd's loopback relay serves it (host only)",
    "routed_open": "routed IPv6 (gateway_mode_ipv6=routed): a published port, reached directly",
    "routed_icmp": "routed IPv6 (gateway_mode_ipv6=routed): ICMPv6 passes, as in Docker",
}


@dataclass(frozen=True)
class Scene:
    """The live state explain reads (taken under the controller's lock)."""

    networks: Sequence[Network]
    containers: Sequence[Container]
    endpoints: Sequence[Endpoint]
    host_addresses: Sequence[IPv4Interface | IPv6Interface]
    firewall: FirewallModel
    backend: str  # nftables | iptables | none


@dataclass(frozen=True)
class Net:
    """A network as explain sees it: its addressing of one family (the question's), and the
    firewall's view of it (masquerade and routed differ per family: IPv6 routed mode)."""

    id: str
    name: str
    driver: str
    bridge: str | None
    subnet: IPv4Network | IPv6Network | None
    gateway: IPv4Address | IPv6Address | None
    internal: bool
    icc: bool
    masquerade: bool
    routed: bool = False

    @classmethod
    def of(cls, n: Network, family: int, fw: FirewallModel) -> Net:
        cfg = n.family(family)
        subnet = cfg.subnet if cfg is not None else None
        gw = cfg.gateway if cfg is not None else None
        intent = next((b for b in fw.bridges if b.bridge == n.bridge and b.subnet == subnet), None)
        masq = intent.masquerade if intent is not None else n.masquerade
        routed = intent.routed if intent is not None else False
        return cls(n.id, n.name, n.driver, n.bridge, subnet, gw, n.internal, n.icc, masq, routed)


@dataclass(frozen=True)
class Step:
    stage: str  # route, bridge, nat, forward, postrouting, input, verdict
    text: str
    rule: str = ""  # the backend's rule text
    reason: str = ""


@dataclass
class Explanation:
    src: str
    dst: str
    port: int | None
    proto: str
    allowed: bool = False
    steps: list[Step] = field(default_factory=list)
    nat: list[str] = field(default_factory=list)
    src_ip: str = ""
    dst_ip: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "Source": self.src,
            "Destination": self.dst,
            "SourceIP": self.src_ip,
            "DestinationIP": self.dst_ip,
            "Port": self.port,
            "Protocol": self.proto,
            "Verdict": "allowed" if self.allowed else "blocked",
            "Steps": [
                {"Stage": s.stage, "Text": s.text, "Rule": s.rule, "Reason": s.reason}
                for s in self.steps
            ],
            "NAT": self.nat,
        }


@dataclass(frozen=True)
class Party:
    kind: str  # container | host | outside
    name: str
    ip: IPv4Address | IPv6Address | None  # the address asked for (None: pick one)
    container: Container | None = None


def is_loopback(ip: IPv4Address | IPv6Address) -> bool:
    return ip.is_loopback  # 127.0.0.0/8, ::1


def hostport(ip: IPv4Address | IPv6Address, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def family_of(text: str) -> int | None:
    """4 or 6 when `text` is an IP address, else None (a name, or 'host')."""
    try:
        return ip_address(text).version
    except ValueError:
        return None


def family_of_question(src: str, dst: str, family: int | None) -> int | None:
    """The family SRC and DST's addresses (or `family`) name; None when neither does."""
    given = {f for f in (family_of(src), family_of(dst)) if f is not None}
    if len(given) > 1 or (family is not None and given - {family}):
        raise InvalidArgument(
            f"{src} and {dst} are not of one address family",
            hint="ask about two IPv4 or two IPv6 addresses (or names)",
        )
    return family or (given.pop() if given else None)


def parse_target(text: str) -> tuple[str, int | None, str]:
    """DST[:PORT][/PROTO] -> (dst, port, proto); proto tcp with a port, icmp without. An IPv6
    DST takes a port in brackets, as URLs do: [2001:db8::2]:8080/tcp; bare, it has none."""
    rest, _, proto = text.partition("/")
    proto = proto.lower()
    if rest.startswith("["):
        dst, sep, port_text = rest[1:].partition("]")
        if not sep or (port_text and not port_text.startswith(":")) or family_of(dst) != 6:
            raise InvalidArgument(
                f"{text!r} is not [IPV6]:PORT", hint="e.g. [2001:db8::2]:8080/tcp"
            )
        port_text = port_text[1:]
    elif rest.count(":") > 1:  # a bare IPv6 address: no port
        dst, port_text = rest, ""
    else:
        dst, sep, port_text = rest.rpartition(":")
        if not sep:
            dst, port_text = rest, ""
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidArgument(
                f"{port_text!r} in {text!r} is not a port", hint="use DST:PORT, e.g. web:80/tcp"
            )
        port = int(port_text)
    if proto and proto not in ("tcp", "udp", "icmp"):
        raise InvalidArgument(f"{proto!r} is not a protocol", hint="use tcp, udp or icmp")
    if not dst:
        raise InvalidArgument(f"no destination in {text!r}", hint="e.g. web:80/tcp or host")
    if proto == "icmp" and port is not None:
        raise InvalidArgument("icmp has no ports", hint=f"drop :{port}, or use /tcp or /udp")
    proto = proto or ("tcp" if port is not None else "icmp")
    if proto != "icmp" and port is None:
        raise InvalidArgument(f"{proto} needs a port", hint=f"e.g. {dst}:80/{proto}")
    return dst, port, proto
