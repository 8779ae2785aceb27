"""Attach latency with `-p 80` under the iptables firewall backend, up to N containers.

    .venv/bin/python -m bench.iptables [--containers 300] [--backend iptables|nftables]

Measures, in a throwaway lab (boxnetd in the lab's host namespace):
- `boxnet run -d -p 80 busybox sleep` wall time per container (CLI start included), reported for
  the whole run and for the last 50 containers (the 250..300 window);
- the firewall part alone, at that size: the backend's add_dnats / remove_dnats of one port
  (iptables: one `iptables-restore --noflush -w` each) in the same namespace, 50 times;
- `network create` / `network rm` at that size (each a full rebuild of the ruleset).
netavark needs 44-83 ms per container with iptables here (26 iptables execs per container).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from boxnet.lab import Lab, basic_lab

PROBE = r"""
import json, statistics, sys, time
from ipaddress import IPv4Address as A
from boxnet.firewall.base import DnatIntent
if sys.argv[2] == "iptables":
    from boxnet.firewall.iptables import IptablesBackend as Backend
else:
    from boxnet.firewall.nftables import NftablesBackend as Backend
fw = Backend()
add, rem = [], []
for i in range(int(sys.argv[1])):
    d = [DnatIntent(A("0.0.0.0"), "tcp", 40000 + i, A("172.17.250.250"), 80)]
    t = time.perf_counter(); fw.add_dnats(d); add.append(time.perf_counter() - t)
    t = time.perf_counter(); fw.remove_dnats(d); rem.append(time.perf_counter() - t)
# Last (it replaces the daemon's rules with a synthetic model of the same size): rebuild alone.
from ipaddress import IPv4Network as N
from boxnet.firewall.base import BridgeIntent, FirewallModel
n = int(sys.argv[3])
model = FirewallModel(
    bridges=(BridgeIntent("boxnet0", N("172.17.0.0/16"), True, False, True),),
    dnats=tuple(
        DnatIntent(A("0.0.0.0"), "tcp", 32768 + i, A(f"172.17.{2 + i // 250}.{1 + i % 250}"), 80)
        for i in range(n)
    ),
)
fw.rebuild(model)  # the first one replaces the daemon's rules wholesale: not measured
extra = BridgeIntent("bx-bench", N("10.99.0.0/24"), True, False, True)
grown = FirewallModel(bridges=(*model.bridges, extra), dnats=model.dnats)
reb = []
for i in range(10):  # a network appears / goes: filter, raw and masquerade chains change
    t = time.perf_counter(); fw.rebuild(grown if i % 2 == 0 else model)
    reb.append(time.perf_counter() - t)
print(json.dumps({"add": add, "remove": rem, "rebuild": reb}))
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<44} n={len(ms):<4} median {statistics.median(ms):6.1f} ms"
        f"  p90 {pct(ms, 0.9):6.1f} ms  max {max(ms):6.1f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=300)
    ap.add_argument("--backend", choices=("iptables", "nftables"), default="iptables")
    ap.add_argument("--probes", type=int, default=50)
    args = ap.parse_args()
    with Lab("bench-ipt") as lab:
        basic = basic_lab(lab)
        extra = ("--firewall-backend", "iptables") if args.backend == "iptables" else ()
        d = lab.boxnetd(basic.host, *extra)
        d.cli("run", "--rm", "busybox", "true")  # builds the busybox image once
        times: list[float] = []
        for i in range(args.containers):
            t = time.perf_counter()
            d.cli("run", "-d", "-p", "80", "--name", f"b{i}", "busybox", "sleep", "100000")
            times.append(time.perf_counter() - t)
        print(f"backend {args.backend}, {args.containers} containers, each `run -d -p 80`")
        print(summary("run -d -p 80 (all)", times))
        tail = times[-50:]
        print(summary(f"run -d -p 80 (last {len(tail)})", tail))
        # At that size, with and without -p interleaved: the share publishing adds to a run.
        pairs: dict[str, list[float]] = {"-p 80": [], "no -p": []}
        for i in range(20):
            for label, extra_args in (("-p 80", ("-p", "80")), ("no -p", ())):
                t = time.perf_counter()
                d.cli(
                    "run", "-d", *extra_args, "--name", f"x{i}{label[0]}", "busybox", "sleep", "9"
                )
                pairs[label].append(time.perf_counter() - t)
        for label, values in pairs.items():
            print(summary(f"run -d {label} (interleaved, at {args.containers})", values))
        rebuilds: list[float] = []
        for i in range(5):  # each create and rm is one full rebuild with every port published
            for verb in (("create", f"bn{i}"), ("rm", f"bn{i}")):
                t = time.perf_counter()
                d.cli("network", *verb)
                rebuilds.append(time.perf_counter() - t)
        print(summary("network create/rm (a full rebuild)", rebuilds))
        if args.backend == "iptables":
            nat = basic.host.run(["iptables", "-t", "nat", "-S", "BOXNET"]).stdout
            print(f"DNAT rules in nat BOXNET: {sum(1 for x in nat.splitlines() if 'DNAT' in x)}")
        probe = basic.host.run(
            [sys.executable, "-c", PROBE, str(args.probes), args.backend, str(args.containers)],
            timeout=300,
        ).stdout
        data = json.loads(probe)
        print(summary("firewall alone: add_dnats (1 port)", data["add"]))
        print(summary("firewall alone: remove_dnats (1 port)", data["remove"]))
        print(
            summary(f"firewall alone: rebuild, +/-1 net ({args.containers} ports)", data["rebuild"])
        )
        d.remove_all_containers()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except subprocess.CalledProcessError as exc:
        print(f"bench failed: {exc}\n{exc.stderr}", file=sys.stderr)
        raise SystemExit(1) from exc
