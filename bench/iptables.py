"""Attach latency with `-p 80` under the iptables firewall backend, per variant, up to N containers.

    .venv/bin/python -m bench.iptables [--containers 300] [--variants nft,legacy]
    .venv/bin/python -m bench.iptables --backend nftables     # the same figures for comparison

For each variant (`--iptables-variant nft`: iptables-nft-restore; `legacy`: iptables-legacy-
restore), in a throwaway lab (boxnetd in the lab's host namespace), it measures:
- attach latency: the daemon's own "network setup" per container (GET /boxnet/metrics, the same
  metric as bench/attach.py: netns + veth + address/route + lease + DNAT), with its parts "attach"
  (the endpoint) and "publish" (the DNAT, i.e. one `iptables-restore --noflush -w`), for the last
  50 containers as the population grows to N (the 250..300 window);
- `boxnet run -d -p 80 busybox sleep` wall time per container (CLI start-up included), for the
  whole run and for the same last 50;
- the firewall part alone, at that size: the backend's add_dnats / remove_dnats of one port in
  the same namespace, 50 times;
- `network create` / `network rm` at that size (each a full rebuild of the ruleset).
Goal (issue 7): attach under 15 ms at 300 containers; netavark with iptables needs 44-83 ms per
container here (26 iptables execs per container).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bench.attach import daemon_metrics, since
from boxnet.lab import Lab, basic_lab
from boxnet.lab import firewalls as fw

GOAL_MS = 15.0
WINDOW = 50  # the last containers of the growth: "at N"

PROBE = r"""
import json, statistics, sys, time
from ipaddress import IPv4Address as A
from boxnet.firewall.base import DnatIntent
if sys.argv[2] == "nftables":
    from boxnet.firewall.nftables import NftablesBackend
    fw = NftablesBackend()
else:
    from boxnet.firewall.iptables import IptablesBackend
    fw = IptablesBackend(sys.argv[2])
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


def ms_of(values: list[float]) -> list[float]:
    return [v / 1000 for v in values]  # metrics are in ms; summary() takes seconds


def measure(firewall: str, n: int, probes: int) -> dict[str, list[float]]:
    """One lab, one daemon with `firewall`; prints its section and returns the key samples."""
    variant = "nftables" if firewall == "nftables" else firewall.removeprefix("iptables-")
    with Lab(f"bench-{fw.short(firewall)}") as lab:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, *fw.daemon_args(firewall))
        d.cli("run", "--rm", "busybox", "true")  # builds the busybox image once
        times: list[float] = []
        before = daemon_metrics(d)
        for i in range(n):
            if i == n - WINDOW:
                before = daemon_metrics(d)
            t = time.perf_counter()
            d.cli("run", "-d", "-p", "80", "--name", f"b{i}", "busybox", "sleep", "100000")
            times.append(time.perf_counter() - t)
        after = daemon_metrics(d)
        window = {k: ms_of(since(before, after, k)) for k in ("setup", "attach", "publish")}
        info = d.cli("info").stdout
        shown = [x.strip() for x in info.splitlines() if x.startswith(("  Variant", "  Binaries"))]
        how = f" ({'; '.join(shown)})" if shown else ""
        print(f"\n## {firewall}: {n} containers, each `run -d -p 80`{how}")
        label = f"at {n - WINDOW}..{n}"
        print(summary(f"daemon: network setup ({label})", window["setup"]))
        print(summary(f"daemon: endpoint attach ({label})", window["attach"]))
        print(summary(f"daemon: publish, the DNAT ({label})", window["publish"]))
        print(summary("run -d -p 80 (all)", times))
        print(summary(f"run -d -p 80 ({label})", times[-WINDOW:]))
        rebuilds: list[float] = []
        for i in range(5):  # each create and rm is one full rebuild with every port published
            for verb in (("create", f"bn{i}"), ("rm", f"bn{i}")):
                t = time.perf_counter()
                d.cli("network", *verb)
                rebuilds.append(time.perf_counter() - t)
        print(summary("network create/rm (a full rebuild)", rebuilds))
        if firewall != "nftables":
            nat = fw.ipt(basic.host, firewall, "-t", "nat", "-S", "BOXNET")
            print(f"DNAT rules in nat BOXNET: {sum(1 for x in nat if 'DNAT' in x)}")
        probe = basic.host.run(
            [sys.executable, "-c", PROBE, str(probes), variant, str(n)], timeout=300
        ).stdout
        data = json.loads(probe)
        print(summary("firewall alone: add_dnats (1 port)", data["add"]))
        print(summary("firewall alone: remove_dnats (1 port)", data["remove"]))
        print(summary(f"firewall alone: rebuild, +/-1 net ({n} ports)", data["rebuild"]))
        d.remove_all_containers()
    return window


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=300)
    ap.add_argument("--backend", choices=("iptables", "nftables"), default="iptables")
    ap.add_argument("--variants", default="nft,legacy", help="iptables variants: nft and/or legacy")
    ap.add_argument("--probes", type=int, default=50)
    args = ap.parse_args()
    if args.backend == "nftables":
        setups = ["nftables"]
    else:
        setups = [f"iptables-{v}" for v in args.variants.split(",")]
        if not set(setups) <= {"iptables-nft", "iptables-legacy"}:
            ap.error(f"--variants {args.variants}: use nft, legacy or nft,legacy")
    results = {firewall: measure(firewall, args.containers, args.probes) for firewall in setups}
    print(f"\n## attach latency at {args.containers} containers (goal < {GOAL_MS:.0f} ms)")
    for firewall, window in results.items():
        setup = [s * 1000 for s in window["setup"]]
        verdict = "meets" if setup and statistics.median(setup) < GOAL_MS else "MISSES"
        print(f"{summary(f'{firewall}: daemon network setup', window['setup'])}  {verdict} goal")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except subprocess.CalledProcessError as exc:
        print(f"bench failed: {exc}\n{exc.stderr}", file=sys.stderr)
        raise SystemExit(1) from exc
