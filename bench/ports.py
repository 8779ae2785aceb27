"""Port publishing at scale: 10,000 published ports in the kernel, no per-port process.

In its own basic lab (host runs boxnetd, outside is the client):
1. `web` publishes 8080 -> 80 (a bare accept-and-close listener with a deep backlog, so the
   server never drops a SYN); TCP connect latency from outside to 203.0.113.2:8080 with that one
   mapping (median and p99 of N connects, client-side clock);
2. 100 containers each publish a 100-port range (`-p 20000-20099:1000-1099`, then 20100-20199, ...):
   10,000 real mappings, counted afterwards in `nft -j list map inet boxnet pub_any`. Time to
   publish: the daemon's own "publish" step (allocation, records, one nft batch; GET
   /boxnet/metrics) summed over the 100 containers, and the wall time of the 100 `run -d`;
3. the same connect latency with 10,001 mappings in place; the daemon's VmRSS before and after.

Run: `.venv/bin/python -m bench.ports [--containers 100] [--per 100] [--connects 300]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.attach import daemon_metrics
from boxnet.lab import Daemon, Lab, Netns, basic_lab, venv_bin

HOST_IP = "203.0.113.2"
PY = str(venv_bin() / "python")

# Runs in the outside namespace: connect() latency only (then close), in microseconds.
CONNECT_LOOP = """
import json, socket, sys, time
n, target = int(sys.argv[1]), (sys.argv[2], int(sys.argv[3]))
samples = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    began = time.perf_counter_ns()
    s.connect(target)
    samples.append((time.perf_counter_ns() - began) / 1000)
    s.close()
print(json.dumps(samples))
"""


# Runs in the web container: accept and close, backlog 4096 (the echo server's is 5).
LISTENER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(4096)
while True:
    s.accept()[0].close()
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect_latency(outside: Netns, port: int, n: int) -> tuple[float, float]:
    """(median, p99) of n TCP connects from outside to the host's published port, in µs."""
    res = outside.run([PY, "-I", "-c", CONNECT_LOOP, str(n), HOST_IP, str(port)], timeout=120)
    samples = sorted(json.loads(res.stdout))
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def map_size(host: Netns) -> int:
    data = json.loads(host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout)
    return len(next(x["map"] for x in data["nftables"] if "map" in x).get("elem", []))


def publish_ms(d: Daemon) -> list[float]:
    return [float(x) for x in daemon_metrics(d).get("publish", {}).get("RecentMs", [])]


def run_many(d: Daemon, count: int, per: int) -> float:
    """Seconds for `count` sequential `run -d`, each publishing a `per`-port range."""
    began = time.perf_counter()
    for i in range(count):
        low = 20000 + i * per
        spec = f"{low}-{low + per - 1}:1000-{1000 + per - 1}"
        d.cli("run", "-d", "--name", f"p{i}", "-p", spec, "busybox", "sleep", "100000")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--per", type=int, default=100)
    parser.add_argument("--connects", type=int, default=300)
    args = parser.parse_args()
    if not (1 <= args.containers <= 200 and 1 <= args.per <= 200 and 10 <= args.connects <= 5000):
        parser.error("bounded: --containers 1..200, --per 1..200, --connects 10..5000")
    total = args.containers * args.per

    with Lab("bench-ports") as lab:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        d.cli("run", "-d", "--name", "web", "-p", "8080:80", "host", PY, "-I", "-c", LISTENER)
        for _ in range(100):  # the listener needs a moment (bounded)
            probe = basic.outside.run(
                ["curl", "-s", "-m", "1", f"telnet://{HOST_IP}:8080"], check=False
            )
            if probe.returncode in (0, 56):  # connected (56: the listener closed it at once)
                break
            time.sleep(0.05)
        connect_latency(basic.outside, 8080, 20)  # warm up (ARP, caches)
        lat1 = connect_latency(basic.outside, 8080, args.connects)
        rss_before = rss_kib(d.pid)

        already = len(publish_ms(d))
        wall = run_many(d, args.containers, args.per)
        steps = publish_ms(d)[already:]
        mappings = map_size(basic.host)
        rss_after = rss_kib(d.pid)
        connect_latency(basic.outside, 8080, 20)
        lat_n = connect_latency(basic.outside, 8080, args.connects)

    rows = [
        ("mappings in `pub_any` (counted with nft -j)", f"{mappings:,}"),
        (
            f"publish {total:,} ports: daemon's publish step, sum of {len(steps)}",
            f"{sum(steps) / 1000:.2f} s ({sum(steps) * 1000 / max(1, total):.0f} µs/port,"
            f" median {statistics.median(steps or [0]):.1f} ms per {args.per}-port container)",
        ),
        (f"{args.containers} x `run -d -p RANGE` end to end", f"{wall:.2f} s"),
        ("daemon VmRSS before / after", f"{rss_before / 1024:.1f} / {rss_after / 1024:.1f} MiB"),
        (f"TCP connect, 1 mapping (median / p99, n={args.connects})", us(lat1)),
        (f"TCP connect, {mappings:,} mappings (median / p99)", us(lat_n)),
        ("processes per published port", "0 (Docker: one docker-proxy per port and family)"),
    ]
    print(f"\n### {total:,} published ports ({args.containers} containers x {args.per})\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def us(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.0f} µs / {pair[1]:.0f} µs"


if __name__ == "__main__":
    main()
