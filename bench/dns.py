"""Benchmark: the embedded resolver's throughput and latency, local names and forwarded names.

    .venv/bin/python -m bench.dns [--queries 20000] [--forwarded 5000] [--window 8]

Own lab (basic_lab; boxnetd in "host" with dns = the lab's upstream in "outside", a stdlib
DNS server that answers every A query). A load generator runs inside a client container's
network namespace (nsenter) and sends queries to 127.0.0.11:53 with `--window` in flight,
timing each one by its id. Reported: queries/s, p50 and p99 latency, lost queries.
- local: A queries cycling over 10 container names on a user network (goal: >= 5,000 qps,
  p99 < 5 ms on a 2-core machine);
- forwarded: names only the upstream knows (its own speed, one Python thread that logs every
  query, bounds this figure).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from boxnet.lab import Daemon, Lab, basic_lab
from boxnet.lab.dns_upstream import dns_server

LOADGEN = r"""
import json, socket, struct, sys, time
names = sys.argv[1].split(","); total = int(sys.argv[2]); window = int(sys.argv[3])
def query(qid, name):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return q + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.11", 53)); s.settimeout(1.0)
sent = {}; lat = []; lost = 0; n = 0; bad = 0
start = time.perf_counter()
while n < total or sent:
    while n < total and len(sent) < window:
        qid = n % 65536
        sent[qid] = time.perf_counter(); s.send(query(qid, names[n % len(names)])); n += 1
    try:
        r = s.recv(4096)
    except socket.timeout:
        lost += len(sent); sent.clear(); continue
    qid = struct.unpack("!H", r[:2])[0]
    t = sent.pop(qid, None)
    if t is not None:
        lat.append(time.perf_counter() - t)
        if r[3] & 0x0F or struct.unpack("!H", r[6:8])[0] == 0:
            bad += 1
elapsed = time.perf_counter() - start
lat.sort()
pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
print(json.dumps({"qps": len(lat) / elapsed, "p50": pick(0.50), "p99": pick(0.99),
                  "answered": len(lat), "lost": lost, "errors": bad}))
"""


def load(d: Daemon, client: str, names: list[str], total: int, window: int) -> dict[str, float]:
    data = json.loads(d.cli("inspect", "--format", "json", client).stdout)
    netns = (data[0] if isinstance(data, list) else data)["NetworkSettings"]["SandboxKey"]
    argv = ["nsenter", f"--net={netns}", "--", sys.executable, "-I", "-c", LOADGEN]
    argv += [",".join(names), str(total), str(window)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600).stdout
    result: dict[str, float] = json.loads(out)
    return result


def show(label: str, r: dict[str, float]) -> None:
    print(
        f"{label:<28} {r['qps']:8.0f} qps   p50 {r['p50']:6.2f} ms   p99 {r['p99']:6.2f} ms"
        f"   answered {r['answered']:.0f}, lost {r['lost']:.0f}, errors {r['errors']:.0f}"
    )


def answer_cost(rounds: int = 20_000) -> None:
    """In-process: what one local answer costs the serving thread without and with the cache."""
    import time
    from ipaddress import IPv4Address

    from dnslib import DNSRecord

    from boxnet.dns.answer import Answerer
    from boxnet.dns.table import NameEntry, NameTable

    entries = [
        NameEntry(f"c{i:063d}", "net", IPv4Address(f"10.0.{i // 250}.{i % 250 + 2}"), (f"n{i}",))
        for i in range(1000)
    ]
    table = NameTable(entries)
    a_queries = [bytes(DNSRecord.question(f"n{i % 1000}").pack()) for i in range(rounds)]
    ptr_queries = [
        bytes(DNSRecord.question(f"{i % 250 + 2}.0.0.10.in-addr.arpa", "PTR").pack())
        for i in range(rounds)
    ]
    asker = "c" + "0" * 63
    cases = (
        ("A, uncached (hand-packed)", a_queries, False),
        ("PTR, uncached (dnslib)", ptr_queries, False),
        ("A, cached", a_queries, True),
    )
    for label, queries, cached in cases:
        answerer = Answerer(table)
        for q in queries[:1000]:
            answerer.decide(asker, q)
        start = time.perf_counter()
        for q in queries:
            if not cached:
                answerer._cache.clear()
            answerer.decide(asker, q)
        per = (time.perf_counter() - start) / len(queries) * 1e6
        print(f"{'local answer, ' + label:<40} {per:6.1f} us per query (1,000 names)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--forwarded", type=int, default=5_000)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()
    with Lab("bench-dns") as lab:
        basic = basic_lab(lab)
        dns_server(lab, basic.outside, "192.0.2.53")
        d = lab.boxnetd(basic.host, config={"dns": ["203.0.113.1"]})
        d.cli("network", "create", "bench")
        targets = [f"t{i}" for i in range(10)]
        for name in [*targets, "client"]:
            d.cli("run", "-d", "--name", name, "--network", "bench", "busybox", "sleep", "3600")
        load(d, "client", targets, 500, args.window)  # warm-up
        show("local names, window 1", load(d, "client", targets, args.queries // 4, 1))
        show(f"local names, window {args.window}",
             load(d, "client", targets, args.queries, args.window))  # fmt: skip
        forwarded = [f"host{i}.example.test" for i in range(200)]
        show("forwarded, window 1", load(d, "client", forwarded, args.forwarded // 4, 1))
        show(f"forwarded, window {args.window}",
             load(d, "client", forwarded, args.forwarded, args.window))  # fmt: skip
        d.remove_all_containers()
    answer_cost()


if __name__ == "__main__":
    main()
