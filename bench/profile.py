"""Where the in-daemon attach time goes: perf_counter spans around each step, in a real boxnetd.

    .venv/bin/python -m bench.profile [--containers 30] [--behind 0]

Starts boxnetd in its own lab through a wrapper that, before boxnetd's main(), wraps the steps of
Sandboxes.setup (netns, veth, the netlink socket into the netns, IPRoute construction, the
configuration inside, nft, the SQLite records, the address dump of _publish) and of
Containers.start (etc files, the shim, the resolver's attach and its redirect) and of `rm -f`,
with timers that report into core.metrics as "span:<name>", served by GET /boxnet/metrics. Then
runs `run -d -p 80` N times, then `rm -f` N times, and prints the median of each span times its
calls per container.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator

from bench.attach import daemon_metrics, since
from bench.report import Row
from boxnet.lab import Daemon, Lab, basic_lab, venv_bin

WRAPPER = r"""
import functools, sys, time
from boxnet.core import metrics

def span(owner, attr, name):
    fn = getattr(owner, attr)
    @functools.wraps(fn)
    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            metrics.record("span:" + name, time.perf_counter() - t)
    setattr(owner, attr, timed)

from boxnet.core import containers, removal, sandbox
from boxnet.kernel import links, netns
from boxnet.store import records
from boxnet.firewall import nftables
from boxnet.runtime import launcher

span(netns, "create_netns", "netns: unshare+bind-mount (thread)")
from boxnet.kernel import netnspool
span(netnspool.NetnsPool, "take", "netns: one made ahead, bound (pool)")
span(links, "link_info", "veth: bridge lookup (link get)")
span(links, "add_veth_into", "veth: add_veth_into (total)")
span(links, "netlink_socket_in", "veth: socket into netns (thread+setns)")
span(links, "IPRoute", "veth: IPRoute() construction")
from boxnet.kernel import addressing
span(addressing, "all_ipv4_addresses", "publish: dump host IPv4 addresses")
span(nftables.NftablesBackend, "add_dnats", "publish: nft add_dnats")
from boxnet.core import leasing
span(leasing.Leases, "lease", "sqlite: lease (pick + insert)")
span(sandbox.Sandboxes, "_publish", "publish: total")
span(sandbox.PortAllocator, "allocate", "publish: port allocation (bind() probe)")
span(links, "set_hairpin", "publish: hairpin (brport set)")
for m in ("put_endpoint", "add_ports", "used_host_ports", "leased_ips"):
    span(records.Records, m, "sqlite: " + m)
span(containers, "write_etc_files", "start: etc files")
span(launcher, "launch", "start: shim fork (deferred: it builds the root meanwhile)")
span(launcher.Launched, "go", "start: shim go (netns, /etc, exec, ready) after setup")
span(containers.Containers, "create", "create: total")
span(containers.Containers, "start", "start: total (lock held)")
span(containers.images, "lookup", "create: image lookup")
span(containers.Containers, "_rootfs", "start: image rootfs")
span(records.Records, "update_container", "sqlite: update_container")
span(records.Records, "delete_container", "rm: sqlite delete_container")
span(containers.Containers, "remove", "rm: total (SIGKILL .. deleted)")
span(containers.Containers, "_on_shim_exit", "rm: exit handling (teardown + record)")
span(removal.shutil, "rmtree", "rm: state dir rmtree (after the shim exits)")
span(removal, "delete", "rm: removal.delete (teardown, records, events)")
span(sandbox.Sandboxes, "teardown", "rm: teardown (ports, endpoints, leases, netns)")
span(sandbox.Sandboxes, "_unpublish", "rm: unpublish (nft)")
span(links, "retire_link", "rm: host veth queued for deletion")
span(netns, "delete_netns", "rm: netns unmount")
from boxnet.kernel import nlraw
span(nlraw, "encode_batch", "netlink: pyroute2 encoding (nlraw)")
span(nlraw, "request_batch", "netlink: nlraw request (encode, send, acks)")
from boxnet.core import dnshook
span(dnshook.NameService, "attach", "dns: attach (table, sockets, redirect)")
span(dnshook.NameService, "update", "dns: table update (records, copy-on-write)")
from boxnet.dns import server as dns_server
span(dns_server, "open_sockets", "dns: sockets (bind in netns, ports file, redirect)")
span(dns_server.Resolver, "_call", "dns: a call on the resolver's thread")
try:
    from boxnet.dns import redirect
    span(redirect, "install", "dns: redirect 127.0.0.11:53 (nft batch)")
except ImportError:  # before the redirect existed
    pass
import pyroute2
# pyroute2 0.9's IPRoute serves its verbs through __getattr__ (sync wrappers of the async API).
_getattr = pyroute2.IPRoute.__getattr__
def _timed_getattr(self, name):
    fn = _getattr(self, name)
    if name not in ("link", "addr", "route", "link_lookup"):
        return fn
    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            what = a[0] if a and isinstance(a[0], str) else ""
            metrics.record(f"span:netlink: IPRoute.{name} {what}", time.perf_counter() - t)
    return timed
pyroute2.IPRoute.__getattr__ = _timed_getattr

from boxnet.daemon import main
sys.exit(main(sys.argv[1:]))
"""


def spans(d: Daemon, containers: int, behind: int = 0) -> Iterator[tuple[str, list[float]]]:
    """Spans of `containers` starts and removals with `behind` containers already running."""
    for i in range(behind):
        d.cli("run", "-d", "-p", "80", "--name", f"bg{i}", "busybox", "sleep", "100000")
    before = daemon_metrics(d)
    for i in range(containers):
        d.cli("run", "-d", "-p", "80", "--name", f"p{i}", "busybox", "sleep", "1000")
    for i in range(containers):
        d.cli("rm", "-f", f"p{i}")
    after = daemon_metrics(d)
    for i in range(0, behind, 50):
        d.cli("rm", "-f", *[f"bg{j}" for j in range(i, min(behind, i + 50))], timeout=300)
    for kind in sorted(after):
        if kind.startswith("span:") or kind in ("setup", "attach"):
            yield kind.removeprefix("span:"), since(before, after, kind)


def measure(containers: int, behind: int = 0) -> list[Row]:
    with Lab("bench-profile") as lab:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, exe=[str(venv_bin() / "python"), "-c", WRAPPER])
        d.cli("run", "--rm", "busybox", "true", timeout=120)  # builds the image first
        out = []
        section = f"attach profile, N={behind}" if behind else "attach profile"
        for name, samples in spans(d, containers, behind):
            calls = len(samples) / containers
            per_start = statistics.median(samples) * calls if samples else 0.0
            out.append(
                Row(section, name, f"{per_start:.2f} ms per start"
                    f" (median of {len(samples)} calls, {calls:g}/start)")
            )  # fmt: skip
        return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--containers", type=int, default=30)
    p.add_argument("--behind", type=int, default=0, help="containers running before measuring")
    args = p.parse_args()
    print("| Section | Span | Time |\n|---|---|---|")
    for row in measure(args.containers, args.behind):
        print(f"| {row.section} | {row.measure} | {row.result} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
