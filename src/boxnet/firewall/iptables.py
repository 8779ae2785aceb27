"""The iptables backend: Docker-shaped BOXNET chains, one `iptables-restore --noflush -w` a change.

The rule layout and the policy are in iptables_rules.py. How it is programmed:
- rebuild: one `iptables-save` (to see which jumps exist and whether BOXNET-USER does), then one
  restore that flushes and refills our chains, fixes the jumps, and commits raw, nat and filter
  together; then the `bridge boxnet` nftables table (ICC) in one libnftables transaction.
- add_dnats / remove_dnats: one restore each (nat BOXNET rules only), whatever the count.
- Works with iptables-nft and iptables-legacy: `variant` picks `iptables-<variant>-restore`;
  the default is Debian's `iptables-restore` alternative.
Foreign chains, other rules in the built-in chains and every chain policy are left as they are.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import TYPE_CHECKING

from boxnet.errors import KernelError
from boxnet.firewall import iptables_rules as rules
from boxnet.firewall.base import DnatIntent, FirewallModel

if TYPE_CHECKING:
    from boxnet.firewall.base import FirewallBackend

LOCK_WAIT_SECONDS = "10"
VARIANTS = ("nft", "legacy")


def _binary(variant: str, tool: str) -> str:
    """`iptables-restore`, or `iptables-nft-restore` / `iptables-legacy-restore`."""
    return f"iptables-{variant}-{tool}" if variant else f"iptables-{tool}"


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
    """The two execs this backend makes: save (read) and restore --noflush (one batch)."""

    def __init__(self, variant: str = "") -> None:
        self.variant = variant
        self.save_argv = [_binary(variant, "save")]
        self.restore_argv = [_binary(variant, "restore"), "--noflush", "-w", LOCK_WAIT_SECONDS]

    def available(self) -> bool:
        return shutil.which(self.restore_argv[0]) is not None

    def save(self) -> rules.SaveState:
        return rules.parse_save(_exec(self.save_argv))

    def restore(self, text: str) -> None:
        if text:
            _exec(self.restore_argv, text)


def purge_iptables() -> None:
    """Remove boxnet's iptables chains and jumps in either variant (nftables is active now)."""
    for variant in VARIANTS:
        ipt = Iptables(variant)
        if not ipt.available():
            continue
        try:
            ipt.restore(rules.render_purge(ipt.save()))
        except KernelError:
            # e.g. iptables-legacy on a kernel without ip_tables: nothing of ours can be there.
            continue


class IptablesBackend:
    name = "iptables"

    def __init__(self, variant: str = "") -> None:
        import nftables  # libnftables: the one policy iptables cannot see (ICC, bridged frames)

        self.ipt = Iptables(variant)
        if not self.ipt.available():
            raise KernelError(
                f"firewall backend iptables needs {self.ipt.restore_argv[0]}, which is missing",
                hint="install the iptables package (apt-get install iptables) or use nftables",
            )
        self._nft = nftables.Nftables()
        self._lock = threading.Lock()

    def _nft_run(self, script: str) -> None:
        rc, out, err = self._nft.cmd(script)
        if rc != 0:
            raise KernelError(f"nftables transaction failed: {err.strip() or out.strip()}")

    def rebuild(self, model: FirewallModel) -> None:
        with self._lock:
            self.ipt.restore(rules.render_rebuild(model, self.ipt.save()))
            self._nft_run(rules.render_icc(model.bridges))

    def add_dnats(self, dnats: list[DnatIntent]) -> None:
        if dnats:
            with self._lock:
                self.ipt.restore(rules.render_dnat_change("add", dnats))

    def remove_dnats(self, dnats: list[DnatIntent]) -> None:
        if not dnats:
            return
        with self._lock:
            try:
                self.ipt.restore(rules.render_dnat_change("delete", dnats))
            except KernelError:
                # One absent rule fails the whole batch: delete only what is there.
                present = rules.present_dnats(self.ipt.save(), dnats)
                if present:
                    self.ipt.restore(rules.render_dnat_change("delete", present))

    def is_intact(self) -> bool:
        with self._lock:
            if rules.missing_pieces(self.ipt.save()):
                return False
            rc, _out, _err = self._nft.cmd("list chain bridge boxnet forward")
            return rc == 0

    def teardown(self) -> None:
        with self._lock:
            self.ipt.restore(rules.render_purge(self.ipt.save()))
            self._nft_run("table bridge boxnet\ndelete table bridge boxnet\n")

    def purge_other_backend(self) -> None:
        """Remove the nftables backend's tables (a restart that switched backends)."""
        with self._lock:
            self._nft_run(
                "".join(f"table {f} boxnet\ndelete table {f} boxnet\n" for f in ("ip", "bridge"))
            )


def purge_other_backend(active: FirewallBackend) -> None:
    """At start: remove every rule of the backend that is not `active` (either direction)."""
    if isinstance(active, IptablesBackend):
        active.purge_other_backend()
    else:
        purge_iptables()
