"""The typed model: what boxnet records about networks, containers, endpoints and ports.

Everything that crosses a layer boundary is one of these frozen dataclasses, parsed once at the
edge (API handlers, configuration) so the layers below never see raw JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_interface,
)
from typing import Any

# Either address family. The model carries both; what is IPv4 by nature (127.0.0.11, the
# 172.17/16 pools, DNAT until the firewall learns IPv6) says IPv4 explicitly.
IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

DEFAULT_BRIDGE_NAME = "boxnet0"
DEFAULT_NETWORK = "bridge"
PREDEFINED_NETWORKS = ("bridge", "host", "none")

# Docker's bridge option keys (`network create -o KEY=VALUE`).
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
OPT_MTU = "com.docker.network.driver.mtu"
# "nat" (the default: NAT66 out, nothing routed in) or "routed" (no NAT66; the outside reaches the
# containers' own addresses, published ports only)
OPT_GATEWAY_MODE6 = "com.docker.network.bridge.gateway_mode_ipv6"
# boxnet's: the endpoints' gateway when it is not the network's (`default-gateway` in daemon.json).
OPT_ENDPOINT_GATEWAY = "boxnet.default_gateway"
OPT_ENDPOINT_GATEWAY6 = "boxnet.default_gateway_v6"


class State(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class IPAMConfig:
    """One address family's addressing of a network (an entry of Docker's IPAM.Config)."""

    subnet: IPNetwork
    gateway: IPAddress | None = None
    # Dynamic addresses come only from this range (`--ip-range`, or `fixed-cidr` for the default
    # bridge); static `--ip` addresses may be anywhere in the subnet.
    ip_range: IPNetwork | None = None
    aux_addresses: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.subnet.version

    @property
    def gateway_interface(self) -> IPInterface | None:
        if self.gateway is None:
            return None
        return ip_interface(f"{self.gateway}/{self.subnet.prefixlen}")


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str  # a name in the drivers registry (boxnet.drivers.DRIVERS)
    created: str
    ipam: tuple[IPAMConfig, ...] = ()  # at most one per address family
    bridge: str | None = None
    # False when the bridge belongs to the user (`boxnetd --bridge=NAME`): never created or deleted.
    managed_bridge: bool = True
    internal: bool = False
    attachable: bool = False
    ipv6: bool = False
    icc: bool = True
    masquerade: bool = True
    mtu: int = 1500
    host_binding: IPv4Address = IPv4Address("0.0.0.0")
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    predefined: bool = False

    def family(self, version: int) -> IPAMConfig | None:
        return next((cfg for cfg in self.ipam if cfg.version == version), None)

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class NetworkRequest:
    """`network create` as received: what the user asked for, before any driver checked it."""

    name: str
    driver: str = "bridge"
    subnet: IPv4Network | None = None
    gateway: IPv4Address | None = None
    ip_range: IPv4Network | None = None
    aux_addresses: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    ipv6: bool = False
    ipv4: bool = True  # False (`--ipv4=false`, Docker 28): an IPv6-only network (with --ipv6)
    # The IPv6 addressing asked for (its subnet, maybe gateway, range, aux addresses); None with
    # --ipv6 means a subnet from the IPv6 pools. The fields above are the IPv4 family's.
    ipam6: IPAMConfig | None = None
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortBinding:
    """One published port: host (ip, proto, port) -> container port."""

    container_port: int
    proto: str
    host_ip: IPAddress  # 0.0.0.0 / :: = every address of that family
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class PortRequest:
    """What the user asked for: a host port range (None = ephemeral) for one container port."""

    container_port: int
    proto: str
    host_ip: IPAddress | None  # None: the network's default (both families when it has IPv6)
    host_port_start: int | None
    host_port_end: int | None


@dataclass(frozen=True)
class EndpointRequest:
    """A network the container should be attached to when it runs."""

    network: str
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None  # `--ip6`
    aliases: tuple[str, ...] = ()
    mac: str = ""  # EndpointConfig.MacAddress ("" = derived from the address)
    link_local: tuple[str, ...] = ()  # IPAMConfig.LinkLocalIPs: extra link-local addresses


@dataclass(frozen=True)
class Endpoint:
    """A realised attachment of a running container to a network."""

    id: str
    container_id: str
    network_id: str
    ifname: str
    addresses: tuple[IPInterface, ...]  # one per address family of the network
    gateways: tuple[IPAddress, ...]  # the default route's next hop, per family ((): none)
    mac: str
    host_veth: str  # the host side of the link ("" when there is none, as for macvlan)
    aliases: tuple[str, ...] = ()

    # The IPv4 address, for what is IPv4 by nature (DNAT of IPv4 bindings, Docker's IPAddress
    # fields). An endpoint of an IPv6-only network (--ipv4=false) has none: callers that may
    # meet one ask `interface4` (None) or `primary` (its IPv6 address) instead.
    @property
    def interface(self) -> IPv4Interface:
        found = self.interface4
        if found is None:
            raise ValueError(f"endpoint {self.id[:12]} has no IPv4 address")
        return found

    @property
    def interface4(self) -> IPv4Interface | None:
        return next((a for a in self.addresses if isinstance(a, IPv4Interface)), None)

    @property
    def primary(self) -> IPInterface:
        """The address to show for the endpoint: IPv4 when it has one, else IPv6."""
        return self.interface4 or self.addresses[0]

    @property
    def ip(self) -> IPv4Address:
        return self.interface.ip

    @property
    def prefixlen(self) -> int:
        return self.interface.network.prefixlen

    @property
    def gateway(self) -> IPv4Address | None:
        return next((g for g in self.gateways if isinstance(g, IPv4Address)), None)

    @property
    def interface6(self) -> IPv6Interface | None:
        return next((a for a in self.addresses if isinstance(a, IPv6Interface)), None)

    @property
    def gateway6(self) -> IPv6Address | None:
        return next((g for g in self.gateways if isinstance(g, IPv6Address)), None)


@dataclass(frozen=True)
class BindMount:
    """`-v HOST:CTR[:ro]` or `--mount type=bind`: a host path seen inside the container."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything `create` recorded; immutable for the container's life (except networks)."""

    image: str
    cmd: tuple[str, ...]
    env: tuple[str, ...] = ()
    hostname: str | None = None
    tty: bool = False
    open_stdin: bool = False
    network_mode: str = DEFAULT_NETWORK
    mac_address: str | None = None
    endpoints: tuple[EndpointRequest, ...] = ()
    ports: tuple[PortRequest, ...] = ()
    exposed: tuple[tuple[int, str], ...] = ()
    publish_all: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    auto_remove: bool = False
    log_max_size: int = 10 * 1024 * 1024  # bytes before rotation, 0 = never (parsing/logopts.py)
    log_max_files: int = 3
    image_id: str = ""  # sha256:<hex> the image name meant at create ("" in older records)
    binds: tuple[BindMount, ...] = ()
    user: str = ""  # UID[:GID] or NAME[:GROUP], resolved in the container's /etc/passwd
    workdir: str = ""  # the process's working directory ("" = /): -w, else the image's
    read_only: bool = False
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    restart_policy: str = "no"  # one of parsing.runflags.RESTART_POLICIES
    restart_max: int = 0  # on-failure:N (0 = no limit)
    links: tuple[tuple[str, str], ...] = ()  # (container name, alias) legacy links
    # Disconnected from the network of --network (Docker allows it): no implicit endpoint there.
    primary_detached: bool = False
    tmpfs: dict[str, str] = field(default_factory=dict)  # --tmpfs: container path -> options
    stop_signal: str = ""  # --stop-signal ("" = SIGTERM)
    stop_timeout: int | None = None  # --stop-timeout seconds (None = 10, or stop's -t)
    # The create request as received, for `inspect` (Config / HostConfig shapes).
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    spec: ContainerSpec
    created: str
    state: State = State.CREATED
    pid: int = 0
    shim_pid: int = 0
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    netns_path: str = ""
    error: str = ""
    restart_count: int = 0  # restarts by the restart policy since the last manual start
    # Stopped or killed by a user: a restart policy leaves it stopped (unless-stopped also
    # across daemon restarts).
    manual_stop: bool = False
    paused: bool = False  # every process SIGSTOPped (core/containerops.py: no cgroup freezer)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def hostname(self) -> str:
        return self.spec.hostname or self.short_id


def mac_for_ip(ip: IPAddress) -> str:
    """Docker's trick: a MAC derived from the IP, so a reused IP never meets a stale ARP entry
    (an IPv6 address lends its last four bytes)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed[-4:])
