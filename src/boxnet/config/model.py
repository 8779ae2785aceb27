"""The daemon's configuration as typed values: the single truth for one boxnetd run.

Built fresh at every start from flags and daemon.json (nothing is remembered from an earlier run),
so changing the file and restarting is always enough to change behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import Path
from typing import Literal

from boxnet.paths import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_DATA_ROOT,
    DEFAULT_EXEC_ROOT,
    DEFAULT_SOCKET,
    Paths,
)

FirewallBackend = Literal["nftables", "iptables"]
FIREWALL_BACKENDS: tuple[FirewallBackend, ...] = ("nftables", "iptables")
# Which iptables binaries the iptables backend execs: "auto" = the system's `iptables-restore`
# alternative; "nft"/"legacy" = `iptables-nft-restore`/`iptables-legacy-restore`, whatever the
# alternatives say (so a legacy host can be served without running update-alternatives).
IptablesVariant = Literal["auto", "nft", "legacy"]
IPTABLES_VARIANTS: tuple[IptablesVariant, ...] = ("auto", "nft", "legacy")

# Docker's defaults: the default bridge gets 172.17.0.1/16 when neither bip nor bridge is given.
DEFAULT_BIP = IPv4Interface("172.17.0.1/16")
DEFAULT_BRIDGE_NAME = "boxnet0"
DEFAULT_MTU = 1500
ANY_IPV4 = IPv4Address("0.0.0.0")

# Docker's built-in default-address-pools (libnetwork/ipamutils), in Docker's order.
DEFAULT_ADDRESS_POOLS: tuple[tuple[IPv4Network, int], ...] = (
    (IPv4Network("172.17.0.0/16"), 16),
    (IPv4Network("172.18.0.0/16"), 16),
    (IPv4Network("172.19.0.0/16"), 16),
    (IPv4Network("172.20.0.0/14"), 16),
    (IPv4Network("172.24.0.0/14"), 16),
    (IPv4Network("172.28.0.0/14"), 16),
    (IPv4Network("192.168.0.0/16"), 20),
)


@dataclass(frozen=True)
class DaemonConfig:
    """Every field has Docker's default: `DaemonConfig()` is the configuration of a bare start."""

    host: str = DEFAULT_SOCKET  # socket file path (the unix:// prefix removed)
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    exec_root: Path = Path(DEFAULT_EXEC_ROOT)
    config_file: Path = Path(DEFAULT_CONFIG_FILE)
    debug: bool = False
    validate_only: bool = False  # --validate: check, print, exit 0/1, touch nothing
    bridge: str | None = None  # existing bridge to use; "none" = no default network
    bip: IPv4Interface | None = None
    fixed_cidr: IPv4Network | None = None
    default_gateway: IPv4Address | None = None
    # IPv6 on the default bridge: its subnet is bip6's network, else fixed-cidr-v6, else a /64
    # of the unique local pool; with bip6, fixed-cidr-v6 is the range containers get.
    ipv6: bool = False
    fixed_cidr_v6: IPv6Network | None = None
    default_gateway_v6: IPv6Address | None = None
    bip6: IPv6Interface | None = None
    dns: tuple[IPv4Address | IPv6Address, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opts: tuple[str, ...] = ()
    mtu: int = DEFAULT_MTU
    ip: IPv4Address = ANY_IPV4  # default host IP for published ports
    ip_masq: bool = True
    icc: bool = True
    ip_forward: bool = True
    iptables: bool = True  # manage the firewall at all
    firewall_backend: FirewallBackend = "nftables"
    iptables_variant: IptablesVariant = "auto"
    ui: tuple[IPv4Address, int] | None = None  # --ui: the topology page's TCP address
    docker_plugin_socket: Path | None = None  # --docker-plugin-socket: Docker's remote driver
    # IPv4 and IPv6 pools, in the user's order (each family takes its own, see CHOICES "IPv6")
    default_address_pools: tuple[tuple[IPv4Network | IPv6Network, int], ...] = DEFAULT_ADDRESS_POOLS
    insecure_registries: tuple[str, ...] = ()  # host[:port] or CIDR: pulls over plain HTTP
    # Overlay networks (SPEC §3b): etcd endpoints (host, port), this host's underlay address,
    # TLS files for etcd ((kv.cacertfile|kv.certfile|kv.keyfile, path), ...).
    cluster_store: tuple[tuple[str, int], ...] = ()
    cluster_advertise: IPv4Address | None = None
    cluster_store_opts: tuple[tuple[str, str], ...] = ()
    # daemon.json key -> "flag --bip" | "/etc/boxnet/daemon.json:3:1" | "default" | "env ...";
    # excluded from equality/hash: two configs with the same values behave the same.
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def paths(self) -> Paths:
        return Paths(data_root=self.data_root, exec_root=self.exec_root, socket=Path(self.host))

    @property
    def has_default_network(self) -> bool:
        return self.bridge != "none"

    @property
    def default_bridge_address(self) -> IPv4Interface | None:
        """The address boxnetd gives its own default bridge; None when it uses `bridge` as it is."""
        if self.bridge is not None:
            return None
        return self.bip if self.bip is not None else DEFAULT_BIP

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")
