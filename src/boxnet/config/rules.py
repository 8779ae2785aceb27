"""Rules between options (SPEC §2, FEATURES B9), checked once every single value has parsed.

A rule only judges values that are valid on their own: when bip itself is wrong, fixed-cidr is
not also blamed for being outside it (that would send the user after the wrong key). A bip that
was given but is invalid is not replaced by the default for these checks either.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

from boxnet.config.convert import Collector
from boxnet.config.model import DEFAULT_BIP
from boxnet.config.netvalues import MAX_BRIDGE_PREFIX


class Rules:
    def __init__(
        self,
        values: dict[str, object],  # key -> valid typed value, explicitly set only
        given: set[str],  # keys set by flag or file, valid or not
        sources: Mapping[str, str],
        report: Collector,
    ) -> None:
        self.values, self.given, self.sources, self.report = values, given, sources, report

    def check(self) -> None:
        self.bridge_and_bip()
        self.default_network()
        self.default_ipv6()
        self.firewall_switches()
        self.iptables_variant()
        self.pools_overlap()
        self.cluster()

    def add(self, key: str, value: object, message: str, hint: str | None = None) -> None:
        self.report.add(key, self.sources[key], str(value), message, hint)

    def bridge_and_bip(self) -> None:
        if "bridge" in self.given and "bip" in self.given:
            bridge = self.values.get("bridge", "?")
            msg = f'cannot be used together with bridge "{bridge}" ({self.sources["bridge"]})'
            hint = (
                "bip is the address of the bridge boxnetd creates, while bridge uses an existing"
                " bridge with its own address: remove one of the two"
            )
            self.add("bip", self.values.get("bip", "?"), msg, hint)

    def refer(self, other: str, near: str) -> str:
        """Where `other` was set, as seen from `near`'s message: "on line 2" in the same file."""
        there, here = self.sources[other], self.sources[near]
        file, _, position = there.rpartition(":")
        file, _, line = file.rpartition(":")
        if file and position.isdigit() and here.startswith(file + ":"):
            return f"on line {line}"
        return f"from {there}"

    def _bip_network(self, near: str) -> tuple[IPv4Interface, str] | None:
        """The default bridge's address and how to name it, if it can be known now."""
        if "bridge" in self.given:
            return None  # an existing bridge: its address is only known when boxnetd starts
        if "bip" not in self.given:
            return DEFAULT_BIP, f"the default bip {DEFAULT_BIP}; bip is not set"
        bip = self.values.get("bip")
        if not isinstance(bip, IPv4Interface):
            return None  # bip is invalid and already reported
        return bip, f"bip {bip} {self.refer('bip', near)}"

    def default_network(self) -> None:
        if self.values.get("bridge") == "none":
            for key in ("fixed-cidr", "default-gateway"):
                if key in self.given:
                    msg = 'has no effect: bridge is "none", so there is no default network'
                    self.add(key, self.values.get(key, "?"), msg, "remove it, or remove bridge")
            return
        fixed = self.values.get("fixed-cidr")
        known = self._bip_network("fixed-cidr")
        if known and isinstance(fixed, IPv4Network) and not fixed.subnet_of(known[0].network):
            bip, named = known
            net = bip.network
            msg = f"{fixed} is not inside the bip network {net} ({named})"
            example = next(net.subnets(1)) if net.prefixlen < MAX_BRIDGE_PREFIX else net
            hint = f"fixed-cidr is the part of {net} containers get addresses from, e.g. {example}"
            if fixed.prefixlen <= MAX_BRIDGE_PREFIX:
                hint += f"; or move bip into it, e.g. bip {next(fixed.hosts())}/{fixed.prefixlen}"
            self.add("fixed-cidr", fixed, msg, hint)
        gateway = self.values.get("default-gateway")
        known = self._bip_network("default-gateway")
        if known and isinstance(gateway, IPv4Address):
            self.gateway_inside(gateway, *known)

    def gateway_inside(self, gateway: IPv4Address, bip: IPv4Interface, named: str) -> None:
        net = bip.network
        hint = (
            f"pick a router address inside {net}, or leave default-gateway out: containers then"
            f" route through the bridge address {bip.ip}"
        )
        if gateway not in net:
            self.add(
                "default-gateway",
                gateway,
                f"{gateway} is not inside the bip network {net} ({named})",
                hint,
            )
        elif gateway in (net.network_address, net.broadcast_address):
            what = "network" if gateway == net.network_address else "broadcast"
            self.add("default-gateway", gateway, f"{gateway} is the {what} address of {net}", hint)

    def default_ipv6(self) -> None:
        """The IPv6 keys of the default bridge, judged as their IPv4 twins are."""
        keys6 = [k for k in ("fixed-cidr-v6", "default-gateway-v6", "bip6") if k in self.given]
        if self.values.get("bridge") == "none":
            for key in keys6:
                msg = 'has no effect: bridge is "none", so there is no default network'
                self.add(key, self.values.get(key, "?"), msg, "remove it, or remove bridge")
            return
        if "bridge" in self.given and ("ipv6" in self.given and self.values.get("ipv6")):
            msg = f"cannot be used with bridge ({self.sources['bridge']}): boxnetd never changes"
            msg += " the addresses of a bridge it did not create"
            hint = "remove bridge (boxnetd then creates boxnet0 with both families), or use a"
            hint += " user-defined network: boxnet network create --ipv6"
            self.add("ipv6", True, msg, hint)
            return
        if self.values.get("ipv6") is not True:
            for key in keys6:
                named = (
                    f"ipv6 is false ({self.sources['ipv6']})"
                    if "ipv6" in self.given
                    else ("ipv6 is not set")
                )
                self.add(key, self.values.get(key, "?"), f"has no effect: {named}",
                         f"set ipv6 to true (--ipv6), or remove {key}")  # fmt: skip
            return
        bip6 = self.values.get("bip6")
        if "bip6" in self.given and not isinstance(bip6, IPv6Interface):
            return  # invalid and already reported: nothing else is blamed for it
        fixed = self.values.get("fixed-cidr-v6")
        if isinstance(bip6, IPv6Interface) and isinstance(fixed, IPv6Network):
            net = bip6.network
            if not fixed.subnet_of(net):
                msg = f"{fixed} is not inside the bip6 network {net} (bip6 {bip6}"
                msg += f" {self.refer('bip6', 'fixed-cidr-v6')})"
                hint = f"fixed-cidr-v6 is the part of {net} containers get addresses from"
                if fixed.prefixlen < 128:
                    hint += f"; or move bip6 into it, e.g. bip6 {fixed[1]}/{fixed.prefixlen}"
                self.add("fixed-cidr-v6", fixed, msg, hint)
        if "fixed-cidr-v6" in self.given and not isinstance(fixed, IPv6Network):
            return
        gateway = self.values.get("default-gateway-v6")
        if not isinstance(gateway, IPv6Address):
            return
        if isinstance(bip6, IPv6Interface):
            net, named = bip6.network, f"the bip6 network {bip6.network}"
            named += f" (bip6 {bip6} {self.refer('bip6', 'default-gateway-v6')})"
        elif isinstance(fixed, IPv6Network):
            net, named = (
                fixed,
                f"fixed-cidr-v6 {fixed} ({self.refer('fixed-cidr-v6', 'default-gateway-v6')})",
            )
        else:
            return  # a subnet from the pool: checked when boxnetd starts
        hint = (
            f"pick a router address inside {net}, or leave default-gateway-v6 out: containers"
            " then route through the bridge's own IPv6 address"
        )
        if gateway not in net:
            self.add("default-gateway-v6", gateway, f"{gateway} is not inside {named}", hint)
        elif gateway == net.network_address:
            msg = f"{gateway} is the subnet-router anycast address of {net}"
            self.add("default-gateway-v6", gateway, msg, hint)

    def firewall_switches(self) -> None:
        if self.values.get("iptables") is not False:
            return
        if self.values.get("icc") is False:
            msg = "icc=false needs the firewall, but iptables is false"
            hint = "set icc or iptables to true (Docker refuses this combination too)"
            self.add("icc", False, msg + f" ({self.sources['iptables']})", hint)
        if self.values.get("ip-masq") is True and "ip-masq" in self.given:
            msg = "ip-masq=true needs the firewall, but iptables is false"
            hint = "remove ip-masq, or set iptables to true"
            self.add("ip-masq", True, msg + f" ({self.sources['iptables']})", hint)

    def iptables_variant(self) -> None:
        """The variant picks iptables binaries: with another backend it would be ignored."""
        variant = self.values.get("iptables-variant")
        if variant is None:
            return  # not given, or invalid and already reported
        if "firewall-backend" not in self.given:
            named = "firewall-backend is nftables (the default)"
        elif self.values.get("firewall-backend") in (None, "iptables"):
            return  # the iptables backend, or an invalid backend (already reported)
        else:
            named = f"firewall-backend is nftables ({self.sources['firewall-backend']})"
        msg = f"has no effect: {named}; only the iptables backend runs iptables"
        hint = "set firewall-backend to iptables, or remove iptables-variant"
        self.add("iptables-variant", variant, msg, hint)

    def pools_overlap(self) -> None:
        pools = self.values.get("default-address-pools")
        if not isinstance(pools, tuple):
            return
        for i, (base, _) in enumerate(pools):
            for j in range(i):
                other = pools[j][0]
                if other.version == base.version and base.overlaps(other):
                    msg = f"pool {i + 1} ({base}) overlaps pool {j + 1} ({other})"
                    self.add("default-address-pools", base, msg, "make the pools disjoint")

    def cluster(self) -> None:
        """The three cluster options only make sense together (store + advertise, opts need a
        store), and TLS needs both halves of the client certificate."""
        store_given = "cluster-store" in self.given
        if "cluster-advertise" in self.given and not store_given:
            self.add(
                "cluster-advertise",
                self.values.get("cluster-advertise", "?"),
                "has no effect without cluster-store",
                "add cluster-store etcd://HOST:PORT, or remove cluster-advertise",
            )
        if store_given and "cluster-advertise" not in self.given:
            self.add(
                "cluster-store",
                self.values.get("cluster-store", "?"),
                "needs cluster-advertise: other hosts send overlay traffic to that address",
                "add cluster-advertise with this host's address on the network the hosts share",
            )
        opts = self.values.get("cluster-store-opts")
        if "cluster-store-opts" in self.given and not store_given:
            self.add(
                "cluster-store-opts",
                opts if opts is not None else "?",
                "has no effect without cluster-store",
                "add cluster-store etcd://HOST:PORT, or remove cluster-store-opts",
            )
        if not isinstance(opts, tuple):
            return
        keys = [key for key, _ in opts]
        for key in set(keys):
            if keys.count(key) > 1:
                self.add("cluster-store-opts", key, f"{key} is given {keys.count(key)} times",
                         "give each option once")  # fmt: skip
        if ("kv.certfile" in keys) != ("kv.keyfile" in keys):
            have, missing = ("kv.certfile", "kv.keyfile")[:: 1 if "kv.certfile" in keys else -1]
            self.add("cluster-store-opts", have, f"{have} needs {missing}",
                     "a client certificate needs its key: give both")  # fmt: skip
