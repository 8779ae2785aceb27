"""The iptables backend: Docker-shaped BOXNET chains, one `iptables-restore --noflush -w` a change.

The rule layout and the policy are in iptables_rules.py. How it is programmed:
- rebuild: one `iptables-save` (to see which jumps exist and whether BOXNET-USER does), then one
  restore that flushes and refills our chains, fixes the jumps, and commits raw, nat and filter
  together; then the `bridge boxnet` nftables table (ICC) in one libnftables transaction.
- add_dnats / remove_dnats: one restore each (nat BOXNET rules only), whatever the count.
- Works with iptables-nft and iptables-legacy (`--iptables-variant`): "nft"/"legacy" exec
  `iptables-<variant>-restore|save` whatever the host's alternatives say; "auto" execs the
  system's `iptables-restore` alternative and asks it (`--version`) which variant it is.
- At start, before anything is purged or programmed, one empty restore of raw, nat and filter
  proves the binaries exist and the kernel has what they drive (x_tables for legacy, nf_tables
  for nft): a host that cannot run the backend is refused with that reason, not half-served.
Foreign chains, other rules in the built-in chains and every chain policy are left as they are.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import TYPE_CHECKING

from boxnet.errors import KernelError
from boxnet.firewall import iptables_rules as rules
from boxnet.firewall.base import DnatIntent, FirewallModel, Published
from boxnet.firewall.loopback6 import Loopback6Proxy

if TYPE_CHECKING:
    from boxnet.firewall.base import FirewallBackend

LOCK_WAIT_SECONDS = "10"
VARIANTS = ("nft", "legacy")
# What each variant needs from the kernel, for the start-up error.
_KERNEL_PART = {
    "legacy": "x_tables (ip_tables, iptable_raw/nat/filter)",
    "nft": "nf_tables (nft_compat)",
}
_PROBE = "".join(f"*{table}\nCOMMIT\n" for table in rules.TABLES)


def _binary(variant: str, tool: str, family: int = 4) -> str:
    """`iptables-restore` (auto), or `iptables-nft-restore` / `iptables-legacy-restore`; the
    ip6tables ones for family 6."""
    base = "iptables" if family == 4 else "ip6tables"
    return f"{base}-{variant}-{tool}" if variant in VARIANTS else f"{base}-{tool}"


def _exec(argv: list[str], stdin: str = "") -> str:
    try:
        res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise KernelError(
            f"{argv[0]} is not installed", hint="install the iptables package or use nftables"
        ) from exc
    if res.returncode != 0:
        raise KernelError(f"{argv[0]} failed: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout


class Iptables:
    """The two execs this backend makes: save (read) and restore --noflush (one batch), of
    iptables (family 4) or ip6tables (family 6)."""

    def __init__(self, variant: str = "auto", family: int = 4) -> None:
        self.variant = variant  # as configured: auto, nft or legacy
        self.family = family
        self.save_argv = [_binary(variant, "save", family)]
        self.restore_argv = [
            _binary(variant, "restore", family), "--noflush", "-w", LOCK_WAIT_SECONDS,
        ]  # fmt: skip

    def missing(self) -> list[str]:
        return [a[0] for a in (self.restore_argv, self.save_argv) if shutil.which(a[0]) is None]

    def available(self) -> bool:
        return not self.missing()

    def kind(self) -> str:
        """nft or legacy: what the binaries really drive (auto asks the alternative)."""
        if self.variant in VARIANTS:
            return self.variant
        out = _exec([self.restore_argv[0], "--version"])
        # "iptables-restore v1.8.9 (nf_tables)" / "(legacy)"; before 1.8 there was only legacy.
        return "nft" if "nf_tables" in out else "legacy"

    def save(self) -> rules.SaveState:
        return rules.parse_save(_exec(self.save_argv))

    def restore(self, text: str) -> None:
        if text:
            _exec(self.restore_argv, text)


def _check_usable(ipt: Iptables) -> str:
    """The variant `ipt` drives, after proving it can program this kernel; else a clear error."""
    missing = ipt.missing()
    if missing:
        named = "" if ipt.variant == "auto" else f" --iptables-variant {ipt.variant}"
        other = [v for v in VARIANTS if v != ipt.variant]
        raise KernelError(
            f"firewall backend iptables{named} needs {' and '.join(missing)}, which"
            f" {'is' if len(missing) == 1 else 'are'} missing",
            hint="install the iptables package (apt-get install iptables), pick another"
            f" --iptables-variant ({', '.join(other)}) or use --firewall-backend nftables",
        )
    kind = ipt.kind()
    try:
        _exec(ipt.restore_argv, _PROBE)  # loads the tables; changes no rule
    except KernelError as exc:
        why = exc.message.split(" failed: ", 1)[-1].splitlines()[0]
        alt = "nft" if kind == "legacy" else "legacy"
        raise KernelError(
            f"firewall backend iptables ({ipt.restore_argv[0]}, iptables-{kind}) cannot program"
            f" this kernel: {why}",
            hint=f"the kernel needs {_KERNEL_PART[kind]}; load those modules, or use"
            f" --iptables-variant {alt} or --firewall-backend nftables",
        ) from exc
    return kind


def purge_iptables(variants: tuple[str, ...] = VARIANTS) -> None:
    """Remove boxnet's iptables and ip6tables chains and jumps in these variants (another
    firewall is active)."""
    for variant, family in ((v, f) for v in variants for f in (4, 6)):
        ipt = Iptables(variant, family)
        if not ipt.available():
            continue
        try:
            ipt.restore(rules.render_purge(ipt.save()))
        except KernelError:
            # e.g. iptables-legacy on a kernel without ip_tables: nothing of ours can be there.
            continue


class IptablesBackend:
    name = "iptables"

    def __init__(self, variant: str = "auto") -> None:
        import nftables  # libnftables: the one policy iptables cannot see (ICC, bridged frames)

        self.ipt = Iptables(variant)
        self.kind = _check_usable(self.ipt)  # nft or legacy, resolved once
        # ip6tables, proven usable the first time a network has an IPv6 subnet.
        self.ip6t: Iptables | None = None
        self._nft = nftables.Nftables()
        self._lock = threading.Lock()
        self._published = Published()
        self._proxy = Loopback6Proxy()
        self._counts: dict[str, int] | None = None  # rules per own chain after the last rebuild
        self._counts6: dict[str, int] | None = None  # the same in ip6tables (once it is used)

    def details(self) -> list[tuple[str, str]]:
        binaries = f"{self.ipt.restore_argv[0]}, {self.ipt.save_argv[0]}"
        if self.ipt.variant == "auto":
            binaries += " (auto: the system's alternatives)"
        return [("Variant", f"iptables-{self.kind}"), ("Binaries", binaries)]

    def _nft_run(self, script: str) -> None:
        rc, out, err = self._nft.cmd(script)
        if rc != 0:
            raise KernelError(f"nftables transaction failed: {err.strip() or out.strip()}")

    def _ip6tables(self) -> Iptables:
        if self.ip6t is None:
            ip6t = Iptables(self.ipt.variant, family=6)
            _check_usable(ip6t)
            self.ip6t = ip6t
        return self.ip6t

    def rebuild(self, model: FirewallModel) -> None:
        with self._lock:
            ipv4 = rules.family_model(model, 4)
            self.ipt.restore(rules.render_rebuild(ipv4, self.ipt.save()))
            ipv6 = rules.family_model(model, 6)
            if ipv6.bridges or ipv6.dnats or self.ip6t is not None:  # once used, kept in step
                ip6t = self._ip6tables()
                ip6t.restore(rules.render_rebuild(ipv6, ip6t.save(), family=6))
                self._counts6 = rules.rule_counts(ip6t.save())
            self._nft_run(rules.render_icc(model.bridges))
            self._proxy.reset(model.dnats)
            # both families' (ip6tables' too: a flush of its BOXNET chain alone must be noticed)
            self._published.reset(model.dnats)
            self._counts = rules.rule_counts(self.ipt.save())

    def _family(self, family: int) -> Iptables:
        return self.ipt if family == 4 else self._ip6tables()

    def add_dnats(self, dnats: list[DnatIntent]) -> None:
        if not dnats:
            return
        with self._lock:
            self._proxy.add(dnats)
            done: list[int] = []
            try:
                for family in (4, 6):
                    mine = list(rules.family_dnats(dnats, family))
                    if mine:
                        self._family(family).restore(rules.render_dnat_change("add", mine))
                        done.append(family)
            except KernelError:
                self._proxy.remove(dnats)
                for family in done:
                    mine = list(rules.family_dnats(dnats, family))
                    self._family(family).restore(rules.render_dnat_change("delete", mine))
                raise
            self._published.add(dnats)

    def remove_dnats(self, dnats: list[DnatIntent]) -> None:
        if not dnats:
            return
        with self._lock:
            self._published.remove(dnats)
            self._proxy.remove(dnats)
            for family in (4, 6):
                mine = list(rules.family_dnats(dnats, family))
                if mine:
                    self._remove_family(self._family(family), mine)

    @staticmethod
    def _remove_family(ipt: Iptables, dnats: list[DnatIntent]) -> None:
        try:
            ipt.restore(rules.render_dnat_change("delete", dnats))
        except KernelError:
            # One absent rule fails the whole batch: delete only what is there.
            present = rules.present_dnats(ipt.save(), dnats)
            if present:
                ipt.restore(rules.render_dnat_change("delete", present))

    def is_intact(self) -> bool:
        """Chains and jumps present, each own chain with as many rules as the last rebuild left
        (`iptables -t nat -F BOXNET-POSTROUTING` counts as removed), one published port's DNAT
        rule still there, and the bridge table's ICC chain; the same of ip6tables once a network
        has IPv6 (`ip6tables -t nat -F BOXNET` alone counts as removed too)."""
        with self._lock:
            probes = {d.version: d for d in self._published.probes(lambda d: d.version)}
            if not self._family_intact(self.ipt, self._counts, probes.get(4)):
                return False
            if self.ip6t is not None and not self._family_intact(
                self.ip6t, self._counts6, probes.get(6)
            ):
                return False
            rc, _out, _err = self._nft.cmd("list chain bridge boxnet forward")
            return rc == 0

    @staticmethod
    def _family_intact(
        ipt: Iptables, counts: dict[str, int] | None, probe: DnatIntent | None
    ) -> bool:
        current = ipt.save()
        if rules.missing_pieces(current, ipt.family) or rules.rule_counts(current) != counts:
            return False
        return probe is None or rules.probe_present(current, probe)

    def teardown(self) -> None:
        with self._lock:
            self._proxy.close()
            self.ipt.restore(rules.render_purge(self.ipt.save()))
            if self.ip6t is not None:
                self.ip6t.restore(rules.render_purge(self.ip6t.save()))
            self._nft_run("table bridge boxnet\ndelete table bridge boxnet\n")

    def purge_other_backend(self) -> None:
        """Remove the nftables backend's tables and the other iptables variant's chains (a
        restart that switched backend or variant): only this variant's BOXNET chains remain."""
        with self._lock:
            self._nft_run(
                "".join(
                    f"table {f} boxnet\ndelete table {f} boxnet\n" for f in ("ip", "inet", "bridge")
                )
            )
        purge_iptables(tuple(v for v in VARIANTS if v != self.kind))


def purge_other_backend(active: FirewallBackend) -> None:
    """At start: remove every rule of the backend that is not `active` (either direction)."""
    if isinstance(active, IptablesBackend):
        active.purge_other_backend()
    else:
        purge_iptables()
