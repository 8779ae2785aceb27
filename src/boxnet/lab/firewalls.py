"""The firewall set-ups the e2e suites run under, and observers of the rules each one programs.

A suite parametrises its module fixture over `BACKENDS` (or `ALL`, with iptables-legacy too) and
starts boxnetd with `daemon_args(param)`. The observers run the real tools (`nft`, `iptables-save`
or `iptables-legacy-save`) inside a lab namespace, never boxnet's own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence

from boxnet.lab.netns import Netns

# "iptables" is the host's `iptables` alternative (iptables-nft here); "iptables-legacy" is the
# same backend forced onto the legacy x_tables binaries with --iptables-variant.
BACKENDS = ("nftables", "iptables")
ALL = (*BACKENDS, "iptables-legacy")
_ARGS = {
    "nftables": ("--firewall-backend", "nftables"),
    "iptables": ("--firewall-backend", "iptables"),
    "iptables-legacy": ("--firewall-backend", "iptables", "--iptables-variant", "legacy"),
    "iptables-nft": ("--firewall-backend", "iptables", "--iptables-variant", "nft"),  # bench/
}
_SHORT = {"nftables": "nft", "iptables": "ipt", "iptables-legacy": "leg", "iptables-nft": "inf"}


def daemon_args(firewall: str) -> tuple[str, ...]:
    return _ARGS[firewall]


def of_args(args: Sequence[str]) -> str:
    """The set-up a daemon was started with, from its extra args (nftables when none is named)."""
    joined = " ".join(args)
    if "--firewall-backend iptables" not in joined:
        return "nftables"
    for variant in ("legacy", "nft"):
        if f"--iptables-variant {variant}" in joined:
            return f"iptables-{variant}"
    return "iptables"


def short(firewall: str) -> str:
    """A few letters for lab names: nft, ipt, leg."""
    return _SHORT[firewall]


def iptables(firewall: str) -> str:
    """The iptables command that shows what `firewall` programmed (the system's for nftables)."""
    return firewall if firewall in ("iptables-legacy", "iptables-nft") else "iptables"


def iptables_save(ns: Netns, firewall: str) -> str:
    return str(ns.run([f"{iptables(firewall)}-save"]).stdout)


def ipt(ns: Netns, firewall: str, *args: str) -> list[str]:
    """`iptables -w ARGS` (or iptables-legacy) in ns, as lines."""
    return str(ns.run([iptables(firewall), "-w", *args]).stdout).splitlines()


def ruleset_text(ns: Netns, firewall: str) -> str:
    """Everything the firewall holds in ns as text: the nft ruleset, plus iptables-save output
    for the iptables backends (iptables-nft rules also show in the nft ruleset)."""
    text = str(ns.run(["nft", "list", "ruleset"]).stdout)
    if firewall != "nftables":
        text += iptables_save(ns, firewall)
    return text
